"""Imported character cards have an owner (the rater who imported them; "" for the lab's cards).

Revision ID: 0002_card_owner
Revises: 0001_baseline
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_card_owner"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("persona_cards")}
    if "owner" in columns:  # a table `create_all` made from today's models before it was stamped
        return
    with op.batch_alter_table("persona_cards") as batch:
        batch.add_column(sa.Column("owner", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("persona_cards") as batch:
        batch.drop_column("owner")
