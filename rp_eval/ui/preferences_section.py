"""The Chat tab's "My chat preferences" section: the choices stored from this person's chats, and deleting them.

Owner-scoped as the chats are (`signed_in.scope()`): a rater sees and deletes only their own rows; an admin of a
lab server and the one user of a local app see every row. The rows are `rp_eval.store.preferences`'; what makes
them is `rp_eval.chat.choices`.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from rp_eval.chat import choices
from rp_eval.store import get_store
from rp_eval.store import preferences as prefs
from rp_eval.ui import signed_in
from rp_eval.ui.locale import headers, t, warn, words

SHOWN = 200  # the newest rows listed
CLIP = 80  # characters of each reply shown in the table
COLUMNS = ["id", "when", "kind", "conversation", "chosen_model", "rejected_model", "chosen_text", "rejected_text"]


def _clip(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= CLIP else text[: CLIP - 1] + "…"


def frame(rows: list[prefs.PreferenceRow]) -> pd.DataFrame:
    records = [
        {
            "id": r.id,
            "when": r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "",
            "kind": r.kind,
            "conversation": r.conversation_id,
            "chosen_model": r.chosen_model,
            "rejected_model": r.rejected_model,
            "chosen_text": _clip(r.chosen),
            "rejected_text": _clip(r.rejected),
        }
        for r in rows
    ]
    return pd.DataFrame(records, columns=COLUMNS)


def note() -> str:
    """The one line saying whether chat choices count (the `chat_preferences` setting)."""
    return t("pref_on") if choices.enabled() else t("pref_off")


def show():
    """This person's preferences (newest first), the ids to pick for deleting, and a count line."""
    rows = prefs.list_preferences(get_store(), signed_in.scope(), limit=SHOWN)
    summary = t("pref_count", n=len(rows)) if rows else t("pref_none")
    ids = [(f"#{r.id} · {r.kind} · {_clip(r.chosen)[:30]}", r.id) for r in rows]
    return headers(words(frame(rows), "kind", "pref_kind_")), gr.update(choices=ids, value=[]), summary


def delete(ids):
    """Delete the picked preferences (only this person's own; an id that is not theirs or gone is named)."""
    ids = list(ids or [])
    if not ids:
        return *show()[:2], warn(t("pref_pick"))
    numbers = [int(i) for i in ids if isinstance(i, int) or (isinstance(i, str) and i.strip().isdigit())]
    gone = prefs.delete_preferences(get_store(), numbers, signed_in.scope()) if numbers else 0
    table, picker, _ = show()
    status = t("pref_deleted", n=gone) if gone == len(ids) else warn(t("pref_not_deleted", n=len(ids) - gone))
    return table, picker, status


def build() -> None:
    with gr.Accordion(t("pref_heading"), open=False, elem_id="pref-section"):
        gr.Markdown(note(), elem_id="pref-note")
        table = gr.Dataframe(column_count=0, interactive=False, elem_id="pref-table")  # filled by "Show"
        with gr.Row():
            picker = gr.Dropdown(  # any value reaches `delete`, which deletes only the person's own rows
                [], value=[], multiselect=True, allow_custom_value=True, label=t("pref_pick_label"), elem_id="pref-pick"
            )
            refresh = gr.Button(t("pref_refresh"), size="sm", elem_id="pref-refresh")
            remove = gr.Button(t("pref_delete"), size="sm", variant="stop", elem_id="pref-delete")
        status = gr.Markdown(elem_id="pref-status")
    refresh.click(show, None, [table, picker, status], api_name="chat_preferences_show")
    remove.click(delete, picker, [table, picker, status], api_name="chat_preferences_delete")
