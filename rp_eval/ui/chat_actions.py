"""What the Chat tab's buttons do (the layout and wiring are `rp_eval.ui.chat_tab`).

Every handler renders from the store after it acts, in the request's language, and turns any failure into a
status line (a keyed library error in the page's language; anything unexpected named by its kind), so the
status never stays on "Generating…" and nothing is half shown.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import gradio as gr

from rp_eval import settings as app_settings
from rp_eval import upload_budget
from rp_eval.chat import choices, session
from rp_eval.chat.cards import (
    MAX_CARD_BYTES,
    Card,
    CardError,
    card_png,
    card_to_persona,
    persona_to_card,
    read_card_file,
)
from rp_eval.chat.generate import GenerationSettings
from rp_eval.chat.personas import DEFAULT_USER, Persona
from rp_eval.chat.presets import PRESETS
from rp_eval.chat.sampler_params import bounds, ui_fields
from rp_eval.errors import RpEvalError
from rp_eval.models import registry
from rp_eval.store import cards as card_store
from rp_eval.store import chat as chat_store
from rp_eval.store import get_store
from rp_eval.ui import signed_in
from rp_eval.ui.locale import t, warn
from rp_eval.ui.uploads import uploaded

MAX_STOP_STRINGS, MAX_STOP_CHARS = 16, 100
SEED_MAX = 2**63 - 1
# the Chat tab's sampler fields, in the order of their sliders: their one definition (rp_eval/chat/sampler_params.py)
SAMPLER_FIELDS = list(ui_fields())
FORM = [*SAMPLER_FIELDS, "max_new_tokens", "seed", "stops"]  # the sampling panel's inputs, in this order


def _limits() -> dict[str, tuple]:
    """name -> (locale key of the field's name, lowest, highest, whole numbers only, lowest refused): the bounds of
    GenerationSettings' own fields, so the page refuses exactly what the library would."""
    fields = GenerationSettings.model_fields
    out = {}
    for name, (_, key, *_slider) in ui_fields().items():
        b = bounds(fields[name])
        out[name] = (key, b.low, b.high, b.whole, b.low_open)
    b = bounds(fields["max_new_tokens"])
    out["max_new_tokens"] = ("chat_field_max_new_tokens", b.low, b.high, True, False)
    out["seed"] = ("chat_field_seed", -1, SEED_MAX, True, False)  # -1: a random seed
    return out


LIMITS = _limits()


def model_names() -> list[str]:
    return [r.name for r in registry.list_models()]


def personas() -> dict[str, Persona]:
    """The personas the signed-in person may use: the shipped ones, the lab's cards and their own imports."""
    return session.personas(get_store(), viewer=signed_in.scope())


def persona_choices() -> list[tuple[str, str]]:
    return [(f"{p.name} ({pid})", pid) for pid, p in personas().items()]


def user_name(user: str | None, persona: Persona | None, frame: str = "auto") -> str:
    """The name for {{user}}: what was typed, or the frame language's default (あなた / User)."""
    name = (user or "").strip()
    default = persona.default_user(frame) if persona else DEFAULT_USER["ja"]
    return default if not name or (name in DEFAULT_USER.values() and name != default) else name


# -- rendering ----------------------------------------------------------------------------------------


def reason_words(turn_or_result) -> str:
    reason = turn_or_result.finish_reason
    words = t(f"finish_{reason}") if f"finish_{reason}" in _FINISH_KEYS else reason
    stop = getattr(turn_or_result, "stop", "")
    if reason == "stop_string" and stop:  # as code: a stop such as "</s>" or "\n" must show, not act as markup
        words += " (`" + stop.replace("\n", "\\n").replace("`", "'") + "`)"
    return words


_FINISH_KEYS = {f"finish_{r}" for r in session.FINISH_WORDS}
WAIT_SHOWN = 0.5  # seconds of waiting for a place in the engine worth a word in the footer


def footer(turn_or_result, model: str) -> str:
    """The line under a reply: why it ended, tokens, speed, and the model that wrote it."""
    n, reason = turn_or_result.new_tokens, reason_words(turn_or_result)
    dropped = getattr(turn_or_result, "dropped_turns", 0)  # a reply to a conversation longer than the context
    note = " · " + t("chat_dropped_turns", n=dropped) if dropped else ""
    waited = getattr(turn_or_result, "waited_seconds", 0.0) or 0.0
    if waited >= WAIT_SHOWN:  # the engine was full: the reply queued for a place before it began
        note += " · " + t("chat_waited", seconds=f"{waited:.1f}")
    if n:
        tps = f"{turn_or_result.tokens_per_second:.1f}"
        return t("chat_footer", model=model, reason=reason, tokens=n, tps=tps) + note
    return t("chat_footer_short", model=model, reason=reason) + note


def _names(names: list[str]) -> str:
    return t("chat_fit_name_sep").join(t("chat_fit_name", name=n) for n in names)


def fit_note(r: session.Reply, settings: GenerationSettings) -> str:
    """What of the card a reply's prompt left out to fit its model's context, as one status line."""
    f = r.fitted
    what = [t("chat_fit_examples")] if f.examples_dropped else []
    what += [t("chat_fit_lore", names=_names(f.lore_dropped))] if f.lore_dropped else []
    what += [t("chat_fit_turns", n=f.turns_dropped)] if f.turns_dropped else []
    context = f.room + settings.max_new_tokens
    return t(
        "chat_fit_note",
        model=r.model,
        room=f.room,
        context=context,
        new=settings.max_new_tokens,
        what=t("sep_list").join(what),
    )


def lore_lines(f, has_book: bool) -> list[str]:
    """The prompt view's lines on the card: lorebook entries in the prompt, called up but over the book's budget,
    left out to fit; the example dialogues left out."""
    lines = [t("chat_lore", names=", ".join(f.lore)) if f.lore else ""]
    if f.over_budget:
        lines.append(t("chat_lore_over_budget", budget=f.budget, names=_names(f.over_budget)))
    if f.lore_dropped:
        lines.append(t("chat_lore_dropped", names=_names(f.lore_dropped)))
    if has_book and not (f.lore or f.over_budget or f.lore_dropped):
        lines.append(t("chat_lore_none"))
    if f.examples_dropped:
        lines.append(t("chat_examples_dropped"))
    if f.turns_dropped:
        lines.append(t("chat_dropped_turns", n=f.turns_dropped))
    return [line for line in lines if line]


def side_turns(turns: list, side: str) -> list:
    return [turn for turn in turns if turn.side in ("", side)]


def render_turns(turns: list, side: str, show_raw: bool) -> list[dict]:
    out = []
    for turn in side_turns(turns, side):
        content = turn.content or " "
        if turn.role == "assistant" and turn.finish_reason:
            content += f"\n\n*— {footer(turn, turn.model)}*"
            if show_raw and turn.raw_text:
                content += f"\n\n```text\n{turn.raw_text}\n```"
        out.append({"role": turn.role, "content": content})
    return out


def mine(conv_id: int | None) -> int | None:
    """`conv_id` when the signed-in person may open it (their own; an admin's or a local app's: any), else None."""
    if conv_id is None or chat_store.get_conversation(get_store(), int(conv_id), signed_in.scope()) is None:
        return None
    return int(conv_id)


def render(conv_id: int | None, side: str, show_raw: bool, greeting: str = "") -> list[dict]:
    conv_id = mine(conv_id)
    if conv_id is None:
        return [{"role": "assistant", "content": greeting}] if greeting and side == "a" else []
    return render_turns(chat_store.turns(get_store(), conv_id), side, show_raw)


def live(base: list[dict], r: session.Reply) -> list[dict]:
    if r.error is not None:
        text = t("chat_reply_failed", error=warn(r.error).removeprefix("⚠️ "))
    elif r.result is not None:
        text = (r.result.text or " ") + f"\n\n*— {footer(r.result, r.model)}*"
    else:
        text = (r.text or "") + " ▍"
    return [*base, {"role": "assistant", "content": text}]


def alternative_label(conv_id: int | None):
    conv_id = mine(conv_id)
    index, count = session.alternatives(get_store(), conv_id) if conv_id is not None else (0, 0)
    return gr.update(value=t("chat_alternative", index=index + 1, count=count), visible=count > 1)


# -- settings ---------------------------------------------------------------------------------------------


def _number(name: str, value) -> float | int:
    key, low, high, whole, low_open = LIMITS[name]
    field = t(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise session.ChatError(key="err_number_missing", field=field)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise session.ChatError(key="err_number_missing", field=field) from None
    shown = value if isinstance(value, str) else f"{number:g}"
    if not math.isfinite(number) or not low <= number <= high or (low_open and number == low):
        raise session.ChatError(key="err_number_range", field=field, value=shown, low=low, high=high)
    if whole:
        if number != int(number):
            raise session.ChatError(key="err_number_not_integer", field=field, value=shown)
        return int(number)
    return number


def stop_strings(text: str | None) -> tuple[str, ...]:
    """One stop string a line; `\\n` inside a line stands for a line break."""
    lines = [line.replace("\\n", "\n") for line in (text or "").splitlines() if line.strip()]
    if len(lines) > MAX_STOP_STRINGS or any(len(line) > MAX_STOP_CHARS for line in lines):
        raise session.ChatError(key="err_stop_strings", n=MAX_STOP_STRINGS, chars=MAX_STOP_CHARS)
    return tuple(lines)


def settings(**values) -> GenerationSettings:
    """The sampling panel's values by name (`FORM`), every number checked with the field's name in the message,
    before anything runs or is stored."""
    missing = [name for name in FORM if name not in values]
    if missing:
        raise ValueError(f"settings: no value for {', '.join(missing)}")
    checked = {name: _number(name, values[name]) for name in FORM if name != "stops"}
    seed = checked.pop("seed")
    return GenerationSettings(**checked, seed=None if seed < 0 else seed, stop_strings=stop_strings(values["stops"]))


def preset(name: str):
    """The sliders' values of a named preset, in `SAMPLER_FIELDS` order."""
    p = PRESETS.get(name)
    if p is None:
        return (gr.update(),) * len(SAMPLER_FIELDS)
    return tuple(getattr(p, field) for field in SAMPLER_FIELDS)


# -- chatting -----------------------------------------------------------------------------------------------


def ensure_conversation(conv_id, persona_id, models, user, system, greeting) -> tuple[int, bool]:
    """The conversation to go on with (switched to `models` if they changed: it does not restart), or a new
    one; and whether the models were switched."""
    store = get_store()
    if conv_id is not None:
        conv = chat_store.get_conversation(store, conv_id, signed_in.scope())
        if conv is not None and conv.persona_id == persona_id and len(conv.models) == len(models):
            if conv.system_prompt != system:
                chat_store.update_conversation(store, conv_id, system_prompt=system)
            switched = list(conv.models) != list(models) and all(models)
            session.switch_models(store, conv_id, models)
            return conv_id, switched
    persona = personas().get(persona_id)
    if persona is None:
        raise session.ChatError(key="err_chat_no_persona")
    if not all(models):
        raise session.ChatError(key="err_chat_no_model")
    return session.start(store, persona, models, user, system, int(greeting or 0), owner=signed_in.login()), False


# Stop: the button's handler marks the conversation with a file and the generating handler looks for it after
# every streamed step. A file rather than a set in memory because on a ZeroGPU Space the generating handler runs
# under `spaces.GPU`, in another process than the button's handler (same machine, same workspace).
def _stop_marker(conv_id: int) -> Path:
    return app_settings.home() / "run" / "stop" / str(int(conv_id))


def stop(conv_id) -> None:
    conv_id = mine(conv_id)  # only a conversation this person may open
    if conv_id is not None:
        marker = _stop_marker(conv_id)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


def clear_stop(conv_id: int) -> None:
    _stop_marker(conv_id).unlink(missing_ok=True)


def stop_requested(conv_id: int) -> bool:
    return _stop_marker(conv_id).exists()


def undo(conv_id, show_raw):
    conv_id = mine(conv_id)
    if conv_id is None:
        return gr.update(), gr.update(), warn(t("chat_no_conversation")), gr.update()
    try:
        session.undo(get_store(), conv_id, signed_in.scope())
        status = ""
    except RpEvalError as err:
        status = warn(err)
    return render(conv_id, "a", show_raw), render(conv_id, "b", show_raw), status, alternative_label(conv_id)


def flip(conv_id, show_raw, step: int):
    """‹ / ›: show the previous or next alternative of the last replies."""
    conv_id = mine(conv_id)
    try:
        if conv_id is None:
            raise session.ChatError(key="err_chat_no_alternative")
        session.flip(get_store(), conv_id, step)
        status = ""
    except RpEvalError as err:
        status = warn(err)
    return render(conv_id, "a", show_raw), render(conv_id, "b", show_raw), status, alternative_label(conv_id)


def edit(conv_id, show_raw, side: str, data: gr.EditData):
    """A message edited in a chat box: the turn at that place changes (footer lines are not part of the text)."""
    conv_id = mine(conv_id)
    try:
        if conv_id is None:
            raise session.ChatError(t("chat_edit_before_send"))
        index = data.index if isinstance(data.index, int) else data.index[0]
        turns = side_turns(chat_store.turns(get_store(), conv_id), side)
        if not 0 <= index < len(turns):
            raise session.ChatError(key="err_chat_edit_missing")
        value = data.value if isinstance(data.value, str) else str(data.value)
        text = value.split("\n\n*— ")[0] if turns[index].finish_reason else value
        session.edit(get_store(), conv_id, turns[index].id, text.split("\n\n```text\n")[0])
        status = t("chat_edited")
    except RpEvalError as err:
        status = warn(err)
    return render(conv_id, "a", show_raw), render(conv_id, "b", show_raw), status


def unload(model_a, model_b, side_by_side):
    from rp_eval.models.loading import model_cache  # loads torch; kept out of the tab's import

    cache = model_cache()
    names = [m for m in ([model_a, model_b] if side_by_side else [model_a]) if m]
    loaded = {key.split("|")[0] for key in cache.names()}
    dropped = [m for m in names if m in loaded]
    for name in dropped:
        cache.drop(name)
    if dropped:
        return t("chat_unloaded", names=", ".join(dropped))
    return t("chat_not_loaded", names=", ".join(names) or "-")


# -- cards and files ---------------------------------------------------------------------------------------


def write_temp(name: str, data: bytes) -> str:
    folder = Path(tempfile.mkdtemp(prefix="rp_eval_chat_"))
    tmp = folder / f".{name}.part"
    tmp.write_bytes(data)
    tmp.replace(folder / name)
    return str(folder / name)


def import_card(path):
    if not path:
        return gr.update(), ""
    try:
        path = uploaded(path)  # never a server path named by the client
        upload_budget.check_disk()  # the import writes to the store: not while the disk is nearly full
        size = os.path.getsize(path)
        if size > MAX_CARD_BYTES:
            mb, limit = f"{size / 2**20:.1f}", MAX_CARD_BYTES // 2**20
            raise CardError(key="err_card_too_big", source=Path(path).name, mb=mb, limit=limit)
        card = read_card_file(path)
        blob = Path(path).read_bytes()
        image = blob if blob[:8] == b"\x89PNG\r\n\x1a\n" else None
        admin = signed_in.scope() is None
        persona = session.import_card(get_store(), card, image, owner=signed_in.login(), admin=admin)
    except RpEvalError as err:
        return gr.update(), warn(err)
    said = t("chat_imported", name=persona.name, id=persona.id)
    wanted = card_to_persona(card).id
    if persona.id != wanted:  # a shipped persona's id, or another person's card: kept beside it, not over it
        said += " " + t("chat_imported_own_id", wanted=wanted)
    return gr.update(choices=persona_choices(), value=persona.id), said


def card_for(persona_id: str) -> Card | None:
    stored = {row.persona_id: row.card for row in card_store.visible(get_store(), signed_in.scope())}
    persona = personas().get(persona_id)
    if persona_id in stored and persona is not None and persona_id not in session.load_personas():
        return Card(stored[persona_id])  # an imported card goes out exactly as it came in
    return persona_to_card(persona) if persona else None


def export_card(persona_id, as_png: bool):
    card = card_for(persona_id)
    if card is None:
        return None
    if as_png:
        return write_temp(f"{persona_id}.png", card_png(card, chat_store.card_image(get_store(), persona_id)))
    return write_temp(f"{persona_id}.json", card.to_json().encode("utf-8"))


def export_jsonl(conv_id):
    conv_id = mine(conv_id)
    if conv_id is None:
        return None, warn(t("chat_no_conversation"))
    text = chat_store.export_jsonl(get_store(), conv_id)
    return write_temp(f"conversation-{conv_id}.jsonl", text.encode("utf-8")), ""


def prefer_side(conv_id, side: str) -> str:
    """Side by side: this side's last reply is the better one (a chat preference between the two models)."""
    conv_id = mine(conv_id)
    try:
        if conv_id is None:
            raise session.ChatError(key="err_chat_no_conversation")
        session.prefer_side(get_store(), conv_id, side, signed_in.scope())
    except RpEvalError as err:
        return warn(err)
    return t("pref_side_stored", side=side.upper()) if choices.enabled() else t("pref_off")
