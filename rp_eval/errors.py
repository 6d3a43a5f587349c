"""The one base class for errors meant for a person: the UI shows them, the CLI prints them and exits 2.

An error can carry a message key and values instead of finished text: `ChatError(key="err_chat_empty")`,
`CardError(key="err_card_not_json", source="x.json", detail="...")`. Its English text (what `str(err)`, the
CLI and the logs give) is `MESSAGES[key]` formatted with the values; the UI renders the same key from its
locale table in the page's language (`rp_eval.ui.locale.error_text`, Japanese in `locale_ja.py`). A value that
is itself an `RpEvalError` is rendered in the same language. An error raised with plain text (older code,
messages from other libraries) is shown as it is.

Adding a message: one line here (English), one in `rp_eval/ui/locale_ja.py` (Japanese, same placeholders).
"""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    # chat (rp_eval/chat/session.py, rp_eval/ui/chat_tab.py)
    "err_chat_empty": "the message is empty: type something for the character to answer",
    "err_chat_no_persona": "choose a persona first",
    "err_chat_no_model": "choose a model for each side first",
    "err_chat_no_conversation": "start a conversation first",
    "err_chat_missing": "conversation {id} does not exist",
    "err_chat_nothing_to_regenerate": "there is no reply to regenerate yet",
    "err_chat_nothing_to_undo": "nothing to undo: only the opening message is left",
    "err_chat_side_failed": "{model}: {error}",
    "err_chat_no_alternative": "there is no other reply to show for this turn",
    "err_chat_edit_missing": "that message is no longer in the conversation",
    "err_chat_edit_empty": "an edited message can not be empty",
    "err_number_missing": "{field}: enter a number",
    "err_number_not_integer": "{field}: {value} is not a whole number",
    "err_number_range": "{field}: {value} is outside the allowed range {low} to {high}",
    "err_stop_strings": "Stop strings: at most {n} strings of up to {chars} characters each",
    "err_unexpected": "the request failed ({kind}); nothing was stored",
    # models, ratings, evolution
    "err_registry_no_source": "no model given: type a Hugging Face id (owner/name) or a folder path",
    "err_rating_no_name": "type your name (or log in) before rating: every rating is signed",
    "err_evolve_no_models": "choose the models to merge (besides the base model) first",
    # cards (rp_eval/chat/cards.py)
    "err_card_not_object": "{source}: a character card is a JSON object, got {kind}",
    "err_card_data": "{source}: field 'data' must be an object",
    "err_card_no_name": "{source}: field 'data.name' is missing or empty",
    "err_card_not_list": "{source}: field 'data.{field}' must be a list",
    "err_card_not_json": "{source}: the card is not valid JSON ({detail})",
    "err_card_too_deep": "{source}: the card's JSON is nested too deeply to be a character card",
    "err_card_not_png": "{source}: not a readable PNG image ({detail})",
    "err_card_no_chunk": "{source}: the PNG has no 'chara' or 'ccv3' chunk, so it holds no character card",
    "err_card_not_base64": "{source}: the card chunk is not base64 ({detail})",
    "err_card_too_big": "{source}: the file is {mb} MB; cards up to {limit} MB are accepted",
    "err_card_bad": "card '{name}': {detail}",
    "err_card_book": "{source}: field 'data.character_book' must be an object with a list of 'entries'",
}


class RpEvalError(ValueError):
    """A request that can not be done, with a message that names what is wrong.

    `RpEvalError("text")` as before, or `RpEvalError(key="err_...", **values)` for a message the UI translates.
    """

    def __init__(self, message: str = "", *, key: str = "", **values: object) -> None:
        if key and key not in MESSAGES:
            raise KeyError(f"unknown error message key {key!r}")
        self.key = key
        self.values = values
        super().__init__(message or (format_message(key, values, MESSAGES) if key else ""))


def format_message(key: str, values: dict[str, object], table: dict[str, str], render=str) -> str:
    """`table[key]` (English where the table lacks it) with `values`; nested errors go through `render`."""
    filled = {k: render(v) if isinstance(v, RpEvalError) else v for k, v in values.items()}
    return (table.get(key) or MESSAGES[key]).format(**filled)
