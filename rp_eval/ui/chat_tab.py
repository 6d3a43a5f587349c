"""The Chat tab: a persona, one model or two side by side, streaming replies with why each one ended.

Widgets and wiring, and the handlers that stream; the rest of the handlers are `rp_eval.ui.chat_actions`, the
chat itself is `rp_eval.chat.session` (the same functions tests call). A conversation is created on the first
message, so opening the page stores nothing. Changing the model goes on with the same conversation; Regenerate
keeps the earlier replies as alternatives (‹ ›); any message can be edited in place.
"""

from __future__ import annotations

import gradio as gr

from rp_eval.chat import session
from rp_eval.chat.cards import MAX_CARD_BYTES
from rp_eval.chat.presets import DEFAULT_PRESET, PRESETS
from rp_eval.errors import RpEvalError
from rp_eval.store import chat as chat_store
from rp_eval.store import get_store
from rp_eval.ui import chat_actions as act
from rp_eval.ui import preferences_section, signed_in
from rp_eval.ui.chat_actions import export_card, import_card  # noqa: F401  (tests and other modules call them)
from rp_eval.ui.locale import t, warn
from rp_eval.ui.zerogpu import on_gpu


def _greeting_choices(persona_id: str | None, user: str = "") -> list[tuple[str, int]]:
    persona = act.personas().get(persona_id) if persona_id else None
    if persona is None:
        return []
    user = act.user_name(user, persona)
    labels = [t("chat_greeting_first")] + [
        t("chat_greeting_alt", n=i) for i in range(1, 1 + len(persona.alternate_greetings))
    ]
    return [(f"{label}: {persona.greeting(user, i)[:40]}", i) for i, label in enumerate(labels)]


def reset(persona_id: str, user: str, greeting=0, frame: str = "auto"):
    """A fresh chat (nothing stored until the first message): the chosen opening and the system prompt."""
    persona = act.personas().get(persona_id)
    if persona is None:
        return None, [], [], "", "", gr.update(visible=False)
    user = act.user_name(user, persona, frame)
    opening = [{"role": "assistant", "content": persona.greeting(user, int(greeting or 0))}]
    about = f"**{persona.name}** · {' / '.join(persona.tags)}\n\n{persona.description}"
    return None, opening, [], persona.system_text(user, frame), about, gr.update(visible=False)


def choose_persona(persona_id: str, user: str, frame: str):
    """A persona picked (or imported): its greetings to choose from, your name (あなた for a Japanese card, User for
    an English one, unless you typed your own), and a fresh chat."""
    user = act.user_name(user, act.personas().get(persona_id), frame)
    choices = _greeting_choices(persona_id, user)
    return gr.update(choices=choices, value=0), user, *reset(persona_id, user, 0, frame)


def toggle_side_by_side(on: bool, conv_id, persona_id: str, user: str, greeting, frame: str):
    """Side by side on or off: a fresh chat (one conversation has one or two sides from its first message), and,
    when a conversation was open, a line saying so and where the earlier one is kept."""
    note = t("chat_side_by_side_new") if act.mine(conv_id) is not None else ""
    return (gr.update(visible=on), *reset(persona_id, user, greeting, frame)[:3], note)


def reframe(persona_id: str, user: str, greeting, frame: str):
    """Another prompt frame: the system prompt in that language, and your default name with it."""
    user = act.user_name(user, act.personas().get(persona_id), frame)
    return user, *reset(persona_id, user, greeting, frame)


@on_gpu(duration=120)
def respond(
    message, conv_id, persona_id, model_a, model_b, side_by_side, user, system, greeting, frame, show_raw, *sampling
):
    """Send a message (or, with message None, regenerate): stream the replies into the chat boxes."""
    regenerate = message is None
    persona = act.personas().get(persona_id)
    user = act.user_name(user, persona, frame)
    greeting_text = persona.greeting(user, int(greeting or 0)) if persona else ""
    shown_a, shown_b = act.render(conv_id, "a", show_raw, greeting_text), act.render(conv_id, "b", show_raw)
    keep = gr.update()
    note, fresh = "", conv_id is None
    try:
        if not regenerate and not (message or "").strip():
            raise session.ChatError(key="err_chat_empty")
        if regenerate and conv_id is None:
            raise session.ChatError(key="err_chat_nothing_to_regenerate")
        settings = act.settings(**dict(zip(act.FORM, sampling, strict=True)))
        models = [model_a, model_b] if side_by_side else [model_a]
        conv_id, switched = act.ensure_conversation(conv_id, persona_id, models, user, system, greeting)
        if switched:
            note = t("chat_switched", models=" / ".join(models))
    except RpEvalError as err:
        yield shown_a, shown_b, conv_id, keep, warn(err), keep
        return
    store = get_store()
    act.clear_stop(conv_id)
    current: list[session.Reply] = []
    try:
        replies = session.reply(store, conv_id, message, settings, owner=signed_in.scope())
        try:
            for step, current in enumerate(replies):
                if step == 0:
                    stored = chat_store.turns(store, conv_id)
                    base = {s: act.render_turns(stored, s, show_raw) for s in session.SIDES}
                boxes = [act.live(base[r.side], r) for r in current]
                yield *boxes, *([keep] * (2 - len(boxes))), conv_id, "", t("chat_generating"), keep
                if act.stop_requested(conv_id):
                    break
        finally:
            replies.close()  # stores a reply stopped half way
        status = "\n".join(warn(r.error) for r in current if r.error is not None)
        fit_notes = [act.fit_note(r, settings) for r in current if r.turn_id and r.fitted and r.fitted.left_out]
        status = "\n\n".join(s for s in (*fit_notes, status) if s)
    except RpEvalError as err:
        status = warn(err)
    except Exception as err:  # noqa: BLE001  anything unforeseen still ends in a message, never a stuck status
        status = warn(session.ChatError(key="err_unexpected", kind=type(err).__name__))
    nothing = not any(r.turn_id for r in current)
    back = message if nothing and not regenerate else ""
    if nothing and fresh:  # the first request of a new chat failed: the chat is not kept either
        chat_store.delete_conversation(store, conv_id)
        conv_id = None
    if nothing and not regenerate:
        status = "\n\n".join(s for s in (status, t("chat_nothing_stored")) if s)
    elif note:
        status = "\n\n".join(s for s in (note, status) if s)
    chats = act.render(conv_id, "a", show_raw, greeting_text), act.render(conv_id, "b", show_raw)
    yield *chats, conv_id, back, status, act.alternative_label(conv_id)


def regenerate(*args):
    yield from respond(None, *args)


def rerender(conv_id, persona_id, user, greeting, show_raw):
    persona = act.personas().get(persona_id)
    text = persona.greeting(act.user_name(user, persona), int(greeting or 0)) if persona else ""
    return act.render(conv_id, "a", show_raw, text), act.render(conv_id, "b", show_raw)


def raw_prompt(
    conv_id, persona_id, model_a, model_b, side_by_side, user, system, greeting, frame, message, max_new=128
):
    """The exact prompt each side gets for the next reply (with the draft message) or got for the last one, made
    to fit the model's context as a reply's would be, with what of the card it holds and leaves out."""
    from rp_eval.models.loading import model_cache  # loads models; kept out of the tab's import

    models = [model_a, model_b] if side_by_side else [model_a]
    persona = act.personas().get(persona_id)
    if persona is None or not all(models):
        return t("chat_raw_prompt_none")
    user = act.user_name(user, persona, frame)
    conv = chat_store.get_conversation(get_store(), conv_id, signed_in.scope()) if conv_id is not None else None
    book = conv.persona.get("character_book") if conv is not None else persona.character_book
    examples = session.example_blocks(conv.persona, user) if conv is not None else persona.example_blocks(user)
    parts = []
    for side, model in zip(session.SIDES, models, strict=False):
        if conv is not None:
            messages = session.side_messages(get_store(), conv_id, side)
            if messages and messages[0]["role"] == "system":
                messages[0] = {"role": "system", "content": system}
        else:
            messages = [{"role": "system", "content": system}]
            messages.append({"role": "assistant", "content": persona.greeting(user, int(greeting or 0))})
        if (message or "").strip():
            messages.append({"role": "user", "content": message.strip()})
        elif messages[-1]["role"] != "user":
            turns = chat_store.turns(get_store(), conv_id) if conv_id is not None else []
            last = [tn for tn in turns if tn.side == side and tn.prompt]
            parts.append(f"### {side}: {model}\n{last[-1].prompt if last else t('chat_raw_prompt_none')}")
            continue
        try:
            loaded = model_cache().get(model)
            fitted = session.fit(loaded, messages, int(max_new or 128), book, persona.name, user, examples)
            lines = [f"### {side}: {model}", *act.lore_lines(fitted, bool(book)), fitted.prompt]
            parts.append("\n".join(p for p in lines if p))
        except RpEvalError as err:
            parts.append(f"### {side}: {model}\n{warn(err)}")
    return "\n\n".join(parts)


def reopen(choice, show_raw):
    conv = chat_store.get_conversation(get_store(), int(choice), signed_in.scope()) if choice is not None else None
    if conv is None:
        return (gr.update(),) * 9 + (warn(t("chat_pick_conversation")),)
    two = len(conv.models) > 1
    return (
        conv.id,
        gr.update(value=conv.persona_id),
        conv.models[0],
        gr.update(value=conv.models[1] if two else None, visible=two),
        two,
        conv.system_prompt,
        act.render(conv.id, "a", show_raw),
        gr.update(value=act.render(conv.id, "b", show_raw), visible=two),
        act.alternative_label(conv.id),
        "",
    )


def _edit_a(conv_id, show_raw, data: gr.EditData):
    return act.edit(conv_id, show_raw, "a", data)


def _edit_b(conv_id, show_raw, data: gr.EditData):
    return act.edit(conv_id, show_raw, "b", data)


def _conversation_choices() -> list[tuple[str, int]]:
    rows = chat_store.list_conversations(get_store(), signed_in.scope())
    return [(f"#{c.id} {c.title} ({c.created_at:%Y-%m-%d %H:%M})", c.id) for c in rows]


def _side_label(side: str, model: str | None) -> str:
    return t("chat_side_label", side=side, model=model or "-")


# -- layout ------------------------------------------------------------------------------------------


def _sampler_sliders(start) -> list:
    """One slider per sampler field the Chat tab shows (`ui` in rp_eval/chat/sampler_params.py), four a row, set
    from the preset `start`; in `act.SAMPLER_FIELDS` order."""
    sliders = []
    fields = act.ui_fields()
    for first in range(0, len(fields), 4):
        with gr.Row():
            for name in list(fields)[first : first + 4]:
                label, _, low, high, step = fields[name]
                elem = "chat-" + name.replace("_", "-")
                sliders.append(gr.Slider(low, high, getattr(start, name), step=step, label=t(label), elem_id=elem))
    return sliders


def build() -> None:
    gr.Markdown(t("chat_intro"))
    if preferences_section.choices.enabled():  # one line: what is done here counts as a preference
        gr.Markdown(t("pref_on"), elem_id="chat-pref-line")
    models = act.model_names()
    choices = act.persona_choices()
    first_persona = choices[0][1] if choices else None
    conv_id = gr.State(None)
    _, opening, _, first_system, first_about, _ = reset(first_persona, "")
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
        unload_button = gr.Button(t("chat_unload"), size="sm", scale=0, min_width=160, elem_id="chat-unload")
    with gr.Accordion(t("chat_persona_heading"), open=False):
        about = gr.Markdown(first_about, elem_id="chat-persona-about")
        with gr.Row():
            greeting = gr.Dropdown(
                _greeting_choices(first_persona, "あなた"), value=0, label=t("chat_greeting"), elem_id="chat-greeting"
            )
            frame = gr.Radio(
                [(t("chat_frame_auto"), "auto"), (t("chat_frame_ja"), "ja"), (t("chat_frame_en"), "en")],
                value="auto",
                label=t("chat_frame"),
                elem_id="chat-frame",
            )
        system = gr.Textbox(first_system, label=t("chat_system_prompt"), lines=8, elem_id="chat-system")
        with gr.Row():
            card_in = gr.File(
                label=t("chat_import_card", mb=MAX_CARD_BYTES // 2**20),
                file_types=[".json", ".png"],
                type="filepath",
                elem_id="chat-card-import",
            )
            with gr.Column():
                export_json = gr.Button(t("chat_export_json"), size="sm", elem_id="chat-export-json")
                export_png = gr.Button(t("chat_export_png"), size="sm", elem_id="chat-export-png")
                card_out = gr.File(label=t("chat_card_file"), interactive=False, elem_id="chat-card-file")
    with gr.Accordion(t("chat_sampling"), open=False):
        start = PRESETS[DEFAULT_PRESET]
        preset_choices = [(t(f"preset_{name}"), name) for name in PRESETS]
        preset = gr.Dropdown(preset_choices, value=DEFAULT_PRESET, label=t("chat_preset"), elem_id="chat-preset")
        sliders = _sampler_sliders(start)
        with gr.Row():
            max_new = gr.Slider(1, 1024, 128, step=1, label=t("chat_max_new_tokens"), elem_id="chat-max-new")
            seed = gr.Number(-1, precision=0, label=t("chat_seed"), elem_id="chat-seed")
        stops = gr.Textbox(label=t("chat_stop_strings"), lines=2, elem_id="chat-stop-strings")
    with gr.Row():
        chat_a = gr.Chatbot(
            opening,
            label=_side_label("A", model_a.value),
            height=460,
            elem_id="chat-box-a",
            allow_tags=False,
            editable="all",
        )
        chat_b = gr.Chatbot(
            label=_side_label("B", model_b.value),
            height=460,
            elem_id="chat-box-b",
            allow_tags=False,
            visible=False,
            editable="all",
        )
    with gr.Row(equal_height=True):
        prev_button = gr.Button("‹", size="sm", scale=0, min_width=48, elem_id="chat-prev")
        alternative = gr.Markdown(visible=False, elem_id="chat-alternative")
        next_button = gr.Button("›", size="sm", scale=0, min_width=48, elem_id="chat-next")
        with gr.Row(visible=False) as pick_row:  # side by side: which side's last reply is better
            better_a = gr.Button(t("pref_better_a"), size="sm", elem_id="chat-better-a")
            better_b = gr.Button(t("pref_better_b"), size="sm", elem_id="chat-better-b")
    # one line that grows: Enter sends, Shift+Enter starts a new line (Gradio submits on Enter only then)
    message = gr.Textbox(
        label=t("chat_message"),
        placeholder=t("chat_message_placeholder"),
        lines=1,
        max_lines=8,
        elem_id="chat-message",
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
    preferences_section.build()

    fresh = [conv_id, chat_a, chat_b, system, about, alternative]
    inputs = [conv_id, persona, model_a, model_b, side_by_side, user, system, greeting, frame, show_raw]
    inputs += [*sliders, max_new, seed, stops]  # act.FORM's order
    outputs = [chat_a, chat_b, conv_id, message, status, alternative]
    # .input (not .change): only what the person does starts a new chat, not a reopened conversation's values.
    # A model picked while chatting does not: the conversation goes on with it from the next reply.
    persona.input(choose_persona, [persona, user, frame], [greeting, user, *fresh])
    gr.on([clear.click, user.blur, greeting.input], reset, [persona, user, greeting, frame], fresh)
    frame.input(reframe, [persona, user, greeting, frame], [user, *fresh])
    side_by_side.input(
        toggle_side_by_side,
        [side_by_side, conv_id, persona, user, greeting, frame],
        [model_b, conv_id, chat_a, chat_b, status],
    ).then(lambda on: (gr.update(visible=on),) * 2, side_by_side, [chat_b, pick_row])
    better_a.click(lambda c: act.prefer_side(c, "a"), conv_id, status, api_name="chat_prefer_a")
    better_b.click(lambda c: act.prefer_side(c, "b"), conv_id, status, api_name="chat_prefer_b")
    model_a.change(lambda m: gr.update(label=_side_label("A", m)), model_a, chat_a)
    model_b.change(lambda m: gr.update(label=_side_label("B", m)), model_b, chat_b)
    preset.input(act.preset, preset, sliders)
    sending = gr.on([send.click, message.submit], respond, [message, *inputs], outputs)
    regenerating = regen.click(regenerate, inputs, outputs)
    stop_button.click(act.stop, conv_id, None, queue=False)
    undo_button.click(act.undo, [conv_id, show_raw], [chat_a, chat_b, status, alternative])
    prev_button.click(lambda c, r: act.flip(c, r, -1), [conv_id, show_raw], [chat_a, chat_b, status, alternative])
    next_button.click(lambda c, r: act.flip(c, r, 1), [conv_id, show_raw], [chat_a, chat_b, status, alternative])
    chat_a.edit(_edit_a, [conv_id, show_raw], [chat_a, chat_b, status])
    chat_b.edit(_edit_b, [conv_id, show_raw], [chat_a, chat_b, status])
    unload_button.click(act.unload, [model_a, model_b, side_by_side], status)
    show_raw.change(rerender, [conv_id, persona, user, greeting, show_raw], [chat_a, chat_b])
    raw_button.click(raw_prompt, [*inputs[:9], message, max_new], raw_box)
    card_in.upload(import_card, card_in, [persona, status]).then(
        choose_persona, [persona, user, frame], [greeting, user, *fresh]
    )
    export_json.click(lambda p: export_card(p, False), persona, card_out)
    export_png.click(lambda p: export_card(p, True), persona, card_out)
    reopen_button.click(
        reopen,
        [conversation, show_raw],
        [conv_id, persona, model_a, model_b, side_by_side, system, chat_a, chat_b, alternative, status],
    ).then(lambda on: gr.update(visible=on), side_by_side, pick_row)
    jsonl_button.click(act.export_jsonl, conv_id, [jsonl_out, status])
    # the page is built once for everyone: each person's own imported cards join the list when it opens
    persona.focus(lambda: gr.update(choices=act.persona_choices()), None, persona, queue=False, show_progress="hidden")
    for picker in (model_a, model_b):  # models merged, trained or added in other tabs show up when a list opens
        picker.focus(lambda: gr.update(choices=act.model_names()), None, picker, queue=False, show_progress="hidden")
    refresh.click(
        lambda: (
            gr.update(choices=_conversation_choices()),
            gr.update(choices=act.model_names()),
            gr.update(choices=act.model_names()),
        ),
        None,
        [conversation, model_a, model_b],
    )
    for event in (sending, regenerating):
        event.then(lambda: gr.update(choices=_conversation_choices()), None, conversation)
