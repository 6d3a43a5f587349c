"""Chat choices stored as preferences (rp_eval/store/preferences.py): the table `chat_preferences`.

Revision ID: 0003_chat_preferences
Revises: 0002_card_owner
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_chat_preferences"
down_revision = "0002_card_owner"
branch_labels = None
depends_on = None

INDEXED = ("conversation_id", "owner", "chosen_turn", "created_at")


def upgrade() -> None:
    if "chat_preferences" in sa.inspect(op.get_bind()).get_table_names():
        return  # made by `create_all` from today's models before this revision existed
    op.create_table(
        "chat_preferences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("persona_id", sa.String(200), nullable=False),
        sa.Column("side", sa.String(2), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("chosen_turn", sa.Integer(), nullable=False),
        sa.Column("rejected_turn", sa.Integer(), nullable=True),
        sa.Column("chosen_model", sa.String(200), nullable=False),
        sa.Column("rejected_model", sa.String(200), nullable=False),
        sa.Column("chosen", sa.Text(), nullable=False),
        sa.Column("rejected", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in INDEXED:
        op.create_index(f"ix_chat_preferences_{column}", "chat_preferences", [column])


def downgrade() -> None:
    op.drop_table("chat_preferences")
