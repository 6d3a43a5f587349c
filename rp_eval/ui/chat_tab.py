"""The Chat tab: a persona, one model or two side by side, streaming replies with why each one ended.

Widgets and wiring only; the chat itself is `rp_eval.chat.session` (the same functions tests call).
A conversation is created on the first message, so opening the page stores nothing.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import gradio as gr

from rp_eval.chat import session
from rp_eval.chat.cards import MAX_CARD_BYTES, Card, card_png, persona_to_card, read_card_file
from rp_eval.chat.generate import GenerationSettings
from rp_eval.errors import RpEvalError
from rp_eval.models import registry
from rp_eval.store import chat as chat_store
from rp_eval.store import get_store
from rp_eval.ui import signed_in
from rp_eval.ui.locale import t
from rp_eval.ui.uploads import uploaded

_stop_requests: set[int] = set()  # conversations whose Stop button was pressed
_stop_lock = threading.Lock()


def _model_names() -> list[str]:
    return [r.name for r in registry.list_models()]


def _personas() -> dict:
    return session.personas(get_store())


def _persona_choices() -> list[tuple[str, str]]:
    return [(f"{p.name} ({pid})", pid) for pid, p in _personas().items()]


# -- rendering ----------------------------------------------------------------------------------------


def _footer(turn_or_reply, show_raw: bool) -> str:
    out = f"\n\n*— {session.finish_words(turn_or_reply)}*"
    if show_raw and getattr(turn_or_reply, "raw_text", ""):
        out += f"\n\n```text\n{turn_or_reply.raw_text}\n```"
    return out


def _render_turns(turns: list, side: str, show_raw: bool) -> list[dict]:
    out = []
    for turn in turns:
        if turn.side not in ("", side):
            continue
        content = turn.content or " "
        if turn.role == "assistant" and turn.finish_reason:
            content += _footer(turn, show_raw)
        out.append({"role": turn.role, "content": content})
    return out


def _render(conv_id: int | None, side: str, show_raw: bool, greeting: str = "") -> list[dict]:
    if conv_id is None:
        return [{"role": "assistant", "content": greeting}] if greeting else []
    return _render_turns(chat_store.turns(get_store(), conv_id), side, show_raw)


def _live(base: list[dict], r: session.Reply) -> list[dict]:
    if r.error:
        text = t("chat_reply_failed", error=r.error)
    elif r.result is not None:
        text = (r.result.text or " ") + f"\n\n*— {session.finish_words(r.result)}*"
    else:
        text = (r.text or "") + " ▍"
    return [*base, {"role": "assistant", "content": text}]


def _greeting(persona_id: str, user: str) -> str:
    persona = _personas().get(persona_id)
    return persona.greeting(user or "あなた") if persona else ""


# -- handlers -------------------------------------------------------------------------------------------


def reset(persona_id: str, user: str):
    """A fresh chat (nothing stored until the first message): the persona's opening and system prompt."""
    persona = _personas().get(persona_id)
    if persona is None:
        return None, [], [], "", ""
    user = user or "あなた"
    opening = [{"role": "assistant", "content": persona.greeting(user)}]
    about = f"**{persona.name}** · {' / '.join(persona.tags)}\n\n{persona.description}"
    return None, opening, opening, persona.system_text(user), about


def _settings(temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed) -> GenerationSettings:
    return GenerationSettings(
        temperature=float(temperature),
        top_p=float(top_p),
        top_k=int(top_k),
        repetition_penalty=float(repetition_penalty),
        max_new_tokens=int(max_new_tokens),
        seed=None if seed is None or int(seed) < 0 else int(seed),
    )


def _ensure_conversation(conv_id, persona_id, model_a, model_b, side_by_side, user, system) -> int:
    store = get_store()
    models = [model_a, model_b] if side_by_side else [model_a]
    if conv_id is not None:
        conv = chat_store.get_conversation(store, conv_id, signed_in.scope())
        if conv is not None and conv.models == models and conv.persona_id == persona_id:
            if conv.system_prompt != system:
                chat_store.update_conversation(store, conv_id, system_prompt=system)
            return conv_id
    persona = _personas().get(persona_id)
    if persona is None:
        raise session.ChatError("choose a persona first")
    if not model_a or (side_by_side and not model_b):
        raise session.ChatError("choose a model for each side first")
    return session.start(store, persona, models, user or "あなた", system, owner=signed_in.login())


def respond(message, conv_id, persona_id, model_a, model_b, side_by_side, user, system, show_raw, *sampling):
    """Send a message (or, with message None, regenerate): stream the replies into the chat boxes."""
    regenerate = message is None
    shown_a, shown_b = _render(conv_id, "a", show_raw, _greeting(persona_id, user)), _render(conv_id, "b", show_raw)
    try:
        if not regenerate and not (message or "").strip():
            raise session.ChatError("the message is empty: type something for the character to answer")
        if regenerate and conv_id is None:
            raise session.ChatError("there is no reply to regenerate yet")
        conv_id = _ensure_conversation(conv_id, persona_id, model_a, model_b, side_by_side, user, system)
        settings = _settings(*sampling)
    except (RpEvalError, ValueError) as err:
        yield shown_a, shown_b, conv_id, gr.update(), f"⚠️ {err}"
        return
    store = get_store()
    with _stop_lock:
        _stop_requests.discard(conv_id)
    replies = session.reply(store, conv_id, message, settings, owner=signed_in.scope())
    try:
        for step, current in enumerate(replies):
            if step == 0:
                stored = chat_store.turns(store, conv_id)
                base = {s: _render_turns(stored, s, show_raw) for s in session.SIDES}
            boxes = [_live(base[r.side], r) for r in current]
            yield *boxes, *([gr.update()] * (2 - len(boxes))), conv_id, "", t("chat_generating")
            if conv_id in _stop_requests:
                break
    except RpEvalError as err:
        yield _render(conv_id, "a", show_raw), _render(conv_id, "b", show_raw), conv_id, gr.update(), f"⚠️ {err}"
        return
    finally:
        replies.close()  # stores a reply stopped half way
    errors = [r.error for r in current if r.error]
    status = "\n".join(f"⚠️ {e}" for e in errors)
    yield _render(conv_id, "a", show_raw), _render(conv_id, "b", show_raw), conv_id, "", status


def stop(conv_id):
    if conv_id is not None:
        with _stop_lock:
            _stop_requests.add(conv_id)


def regenerate(*args):
    yield from respond(None, *args)


def undo(conv_id, show_raw):
    if conv_id is None:
        return gr.update(), gr.update(), f"⚠️ {t('chat_no_conversation')}"
    try:
        session.undo(get_store(), conv_id, signed_in.scope())
        status = ""
    except RpEvalError as err:
        status = f"⚠️ {err}"
    return _render(conv_id, "a", show_raw), _render(conv_id, "b", show_raw), status


def rerender(conv_id, persona_id, user, show_raw):
    return _render(conv_id, "a", show_raw, _greeting(persona_id, user)), _render(conv_id, "b", show_raw)


def raw_prompt(conv_id, persona_id, model_a, model_b, side_by_side, user, system, message):
    """The exact prompt each side gets for the next reply (with the draft message) or got for the last one."""
    from rp_eval.models.loading import model_cache  # loads models; kept out of the tab's import

    models = [model_a, model_b] if side_by_side else [model_a]
    persona = _personas().get(persona_id)
    if persona is None or not all(models):
        return t("chat_raw_prompt_none")
    user = user or "あなた"
    parts = []
    for side, model in zip(session.SIDES, models, strict=False):
        if conv_id is not None:
            messages = session.side_messages(get_store(), conv_id, side)
            if messages and messages[0]["role"] == "system":
                messages[0] = {"role": "system", "content": system}
        else:
            messages = [{"role": "system", "content": system}, {"role": "assistant", "content": persona.greeting(user)}]
        if (message or "").strip():
            messages.append({"role": "user", "content": message.strip()})
        elif messages[-1]["role"] != "user":
            turns = chat_store.turns(get_store(), conv_id) if conv_id is not None else []
            last = [tn for tn in turns if tn.side == side and tn.prompt]
            parts.append(f"### {side}: {model}\n{last[-1].prompt if last else t('chat_raw_prompt_none')}")
            continue
        try:
            loaded = model_cache().get(model)
            parts.append(f"### {side}: {model}\n{session.prompt_text(loaded, messages, persona.name, user)}")
        except RpEvalError as err:
            parts.append(f"### {side}: {model}\n⚠️ {err}")
    return "\n\n".join(parts)


def _write_temp(name: str, data: bytes) -> str:
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
        size = os.path.getsize(path)
        if size > MAX_CARD_BYTES:
            raise session.ChatError(
                f"{Path(path).name}: the file is {size / 2**20:.1f} MB; cards up to {MAX_CARD_BYTES // 2**20} MB "
                "are accepted"
            )
        persona = session.import_card(get_store(), read_card_file(path))
    except RpEvalError as err:
        return gr.update(), f"⚠️ {err}"
    return gr.update(choices=_persona_choices(), value=persona.id), t("chat_imported", name=persona.name, id=persona.id)


def _card(persona_id: str) -> Card | None:
    stored = {row.persona_id: row.card for row in chat_store.list_cards(get_store())}
    persona = _personas().get(persona_id)
    if persona_id in stored and persona is not None and persona_id not in session.load_personas():
        return Card(stored[persona_id])  # an imported card goes out exactly as it came in
    return persona_to_card(persona) if persona else None


def export_card(persona_id, as_png: bool):
    card = _card(persona_id)
    if card is None:
        return None
    if as_png:
        return _write_temp(f"{persona_id}.png", card_png(card))
    return _write_temp(f"{persona_id}.json", card.to_json().encode("utf-8"))


def _conversation_choices() -> list[tuple[str, int]]:
    rows = chat_store.list_conversations(get_store(), owner=signed_in.scope())
    return [(f"#{c.id} {c.title} ({c.created_at:%Y-%m-%d %H:%M})", c.id) for c in rows]


def reopen(choice, show_raw):
    conv = chat_store.get_conversation(get_store(), int(choice), signed_in.scope()) if choice is not None else None
    if conv is None:
        return (gr.update(),) * 8 + (f"⚠️ {t('chat_pick_conversation')}",)
    two = len(conv.models) > 1
    return (
        conv.id,
        gr.update(value=conv.persona_id),
        conv.models[0],
        gr.update(value=conv.models[1] if two else None, visible=two),
        two,
        conv.system_prompt,
        _render(conv.id, "a", show_raw),
        gr.update(value=_render(conv.id, "b", show_raw), visible=two),
        "",
    )


def export_jsonl(conv_id):
    if conv_id is None or chat_store.get_conversation(get_store(), conv_id, signed_in.scope()) is None:
        return None, f"⚠️ {t('chat_no_conversation')}"
    text = chat_store.export_jsonl(get_store(), conv_id)
    return _write_temp(f"conversation-{conv_id}.jsonl", text.encode("utf-8")), ""


def _side_label(side: str, model: str | None) -> str:
    return t("chat_side_label", side=side, model=model or "-")


# -- layout ------------------------------------------------------------------------------------------


def build() -> None:
    gr.Markdown(t("chat_intro"))
    models = _model_names()
    choices = _persona_choices()
    first_persona = choices[0][1] if choices else None
    conv_id = gr.State(None)
    _, opening, _, first_system, first_about = reset(first_persona, "あなた")
    with gr.Row():
        model_a = gr.Dropdown(
            models, value=models[0] if models else None, label=t("chat_model_a"), elem_id="chat-model-a"
        )
        persona = gr.Dropdown(choices, value=first_persona, label=t("chat_persona"), elem_id="chat-persona")
        user = gr.Textbox("あなた", label=t("chat_user_name"), max_lines=1, elem_id="chat-user")
    with gr.Row():
        side_by_side = gr.Checkbox(False, label=t("chat_side_by_side"), elem_id="chat-side-by-side")
        model_b = gr.Dropdown(
            models,
            value=models[1] if len(models) > 1 else None,
            label=t("chat_model_b"),
            visible=False,
            elem_id="chat-model-b",
        )
    with gr.Accordion(t("chat_persona_heading"), open=False):
        about = gr.Markdown(first_about, elem_id="chat-persona-about")
        system = gr.Textbox(first_system, label=t("chat_system_prompt"), lines=8, elem_id="chat-system")
        with gr.Row():
            card_in = gr.File(
                label=t("chat_import_card", mb=MAX_CARD_BYTES // 2**20),
                file_types=[".json", ".png"],
                type="filepath",
                elem_id="chat-card-import",
            )
            with gr.Column():
                export_json = gr.Button(t("chat_export_json"), size="sm")
                export_png = gr.Button(t("chat_export_png"), size="sm")
                card_out = gr.File(label=t("chat_card_file"), interactive=False)
    with gr.Accordion(t("chat_sampling"), open=False):
        with gr.Row():
            temperature = gr.Slider(0.0, 2.0, 0.7, step=0.05, label=t("chat_temperature"))
            top_p = gr.Slider(0.05, 1.0, 0.9, step=0.05, label=t("chat_top_p"))
            top_k = gr.Slider(0, 200, 0, step=1, label=t("chat_top_k"))
        with gr.Row():
            rep = gr.Slider(0.8, 2.0, 1.0, step=0.05, label=t("chat_repetition_penalty"))
            max_new = gr.Slider(1, 1024, 128, step=1, label=t("chat_max_new_tokens"), elem_id="chat-max-new")
            seed = gr.Number(-1, precision=0, label=t("chat_seed"), elem_id="chat-seed")
    with gr.Row():
        chat_a = gr.Chatbot(
            opening, label=_side_label("A", model_a.value), height=460, elem_id="chat-box-a", allow_tags=False
        )
        chat_b = gr.Chatbot(
            label=_side_label("B", model_b.value), height=460, elem_id="chat-box-b", allow_tags=False, visible=False
        )
    message = gr.Textbox(
        label=t("chat_message"), placeholder=t("chat_message_placeholder"), lines=2, elem_id="chat-message"
    )
    with gr.Row():
        send = gr.Button(t("chat_send"), variant="primary", elem_id="chat-send")
        stop_button = gr.Button(t("chat_stop"), variant="stop", elem_id="chat-stop")
        regen = gr.Button(t("chat_regenerate"), elem_id="chat-regenerate")
        undo_button = gr.Button(t("chat_undo"), elem_id="chat-undo")
        clear = gr.Button(t("chat_clear"), elem_id="chat-clear")
    show_raw = gr.Checkbox(False, label=t("chat_show_raw"), elem_id="chat-show-raw")
    status = gr.Markdown(elem_id="chat-status")
    with gr.Accordion(t("chat_raw_prompt_heading"), open=False):
        raw_button = gr.Button(t("chat_raw_prompt"), size="sm", elem_id="chat-raw-prompt")
        raw_box = gr.Textbox(label=t("chat_raw_prompt_box"), lines=12, buttons=["copy"], elem_id="chat-raw-box")
    with gr.Accordion(t("chat_history_heading"), open=False):
        with gr.Row():
            conversation = gr.Dropdown(_conversation_choices(), label=t("chat_conversation"), value=None)
            reopen_button = gr.Button(t("chat_reopen"), size="sm")
            jsonl_button = gr.Button(t("chat_export_jsonl"), size="sm")
            refresh = gr.Button(t("chat_refresh"), size="sm")
        jsonl_out = gr.File(label=t("chat_jsonl_file"), interactive=False)

    fresh = [conv_id, chat_a, chat_b, system, about]
    inputs = [conv_id, persona, model_a, model_b, side_by_side, user, system, show_raw]
    inputs += [temperature, top_p, top_k, rep, max_new, seed]
    outputs = [chat_a, chat_b, conv_id, message, status]
    # .input (not .change): only what the person does starts a new chat, not a reopened conversation's values
    gr.on([persona.input, clear.click, user.blur], reset, [persona, user], fresh)
    gr.on([model_a.input, model_b.input], lambda: None, None, conv_id)
    side_by_side.input(
        lambda on, p, u: (
            gr.update(visible=on),
            None,
            *(gr.update(value=v, visible=on or i == 0) for i, v in enumerate(reset(p, u)[1:3])),
        ),
        [side_by_side, persona, user],
        [model_b, conv_id, chat_a, chat_b],
    )
    model_a.change(lambda m: gr.update(label=_side_label("A", m)), model_a, chat_a)
    model_b.change(lambda m: gr.update(label=_side_label("B", m)), model_b, chat_b)
    sending = gr.on([send.click, message.submit], respond, [message, *inputs], outputs)
    regenerating = regen.click(regenerate, inputs, outputs)
    stop_button.click(stop, conv_id, None, queue=False)
    undo_button.click(undo, [conv_id, show_raw], [chat_a, chat_b, status])
    show_raw.change(rerender, [conv_id, persona, user, show_raw], [chat_a, chat_b])
    raw_button.click(raw_prompt, [*inputs[:7], message], raw_box)
    card_in.upload(import_card, card_in, [persona, status]).then(reset, [persona, user], fresh)
    export_json.click(lambda p: export_card(p, False), persona, card_out)
    export_png.click(lambda p: export_card(p, True), persona, card_out)
    reopen_button.click(
        reopen,
        [conversation, show_raw],
        [conv_id, persona, model_a, model_b, side_by_side, system, chat_a, chat_b, status],
    )
    jsonl_button.click(export_jsonl, conv_id, [jsonl_out, status])
    for picker in (model_a, model_b):  # models merged, trained or added in other tabs show up when a list opens
        picker.focus(lambda: gr.update(choices=_model_names()), None, picker, queue=False, show_progress="hidden")
    refresh.click(
        lambda: (
            gr.update(choices=_conversation_choices()),
            gr.update(choices=_model_names()),
            gr.update(choices=_model_names()),
        ),
        None,
        [conversation, model_a, model_b],
    )
    for event in (sending, regenerating):
        event.then(lambda: gr.update(choices=_conversation_choices()), None, conversation)
