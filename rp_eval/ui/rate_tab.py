"""The Rate tab: blind A/B pairs and 1-5 scores of single replies, signed with the rater's name.

Blindness: the page only ever gets an opaque item id (kept server-side in gr.State) and reply texts; the model
names stay in the store until the judgement is saved, then come back in the status line.
"""

from __future__ import annotations

import random
import re

import gradio as gr

from rp_eval.chat.generate import GenerationSettings
from rp_eval.errors import RpEvalError
from rp_eval.ratings import arena, hub_sync
from rp_eval.ratings.records import AXES
from rp_eval.store import get_store
from rp_eval.ui import signed_in
from rp_eval.ui.locale import t, warn, word
from rp_eval.ui.zerogpu import on_gpu

VOTES = [("model_a", "rate_vote_a"), ("model_b", "rate_vote_b"), ("tie", "rate_vote_tie"), ("bothbad", "rate_vote_bad")]


def _who(name: str, request: gr.Request | None) -> str:
    """The logged-in user when the app runs with auth, else the name typed in this browser session."""
    user = getattr(request, "username", None) if request is not None else None
    return user or (name or "").strip()


RATER_KEY = "rp_eval_rater"


def _ja() -> bool:
    from rp_eval.ui.locale import language

    return language() == "ja"


def _shows_result(status: str | None) -> bool:
    """The status line holds a saved judgement (or a ready item), not an error: a late second click keeps it."""
    return bool(status) and not status.startswith("⚠️")


def _persona_choices() -> list[tuple[str, str]]:
    try:
        found = arena.personas()
    except RpEvalError:
        found = {}
    return [(t("rate_random_persona"), "")] + [(f"{p.name} ({pid})", pid) for pid, p in found.items()]


def _settings(max_new_tokens: float, temperature: float) -> GenerationSettings:
    # one seed for both sides: the pair differs by model only
    return GenerationSettings(
        max_new_tokens=int(max_new_tokens), temperature=float(temperature), seed=random.randrange(2**31)
    )


def _chat(greeting: str, turns: list[tuple[str, str]]) -> list[dict]:
    messages = [{"role": "assistant", "content": greeting}] if greeting else []
    for user, reply in turns:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return messages


def _pair_outputs(view: arena.PairView, status: str):
    a = _chat(view.greeting, [(u, ra) for u, ra, _ in view.turns])
    b = _chat(view.greeting, [(u, rb) for u, _, rb in view.turns])
    return view.item_id, a, b, status


@on_gpu(duration=120)
def new_pair(name, persona, message, max_new_tokens, temperature, request: gr.Request):
    try:
        view = arena.open_pair(
            get_store(), _who(name, request), persona or "", message or "", _settings(max_new_tokens, temperature)
        )
    except RpEvalError as err:
        return gr.skip(), gr.skip(), gr.skip(), warn(err)
    return _pair_outputs(view, t("rate_pair_ready", persona=view.persona_name or "-"))


@on_gpu(duration=120)
def continue_pair(item_id, message):
    if not item_id:
        return gr.skip(), gr.skip(), gr.skip(), f"⚠️ {t('rate_no_pair')}", gr.skip()
    try:
        view = arena.continue_item(get_store(), item_id, message or "")
    except RpEvalError as err:
        return gr.skip(), gr.skip(), gr.skip(), warn(err), gr.skip()
    return *_pair_outputs(view, t("rate_pair_continued", turns=len(view.turns))), ""


def _vote(winner: str):
    def handler(item_id, name, status, request: gr.Request):
        if not item_id:  # a second click after the vote was saved keeps the reveal on screen
            return "", gr.skip() if _shows_result(status) else f"⚠️ {t('rate_no_pair')}"
        try:
            reveal = arena.vote(get_store(), item_id, _who(name, request), winner)
        except RpEvalError as err:
            return item_id, warn(err)
        a, b = reveal.models
        fa, fb = reveal.finish_reasons
        fa, fb = (", ".join(word("finish_", f) for f in side) for side in (fa, fb))
        return "", t("rate_vote_saved", a=a, b=b, fa=fa, fb=fb, id=reveal.judgement_id)

    return handler


@on_gpu(duration=120)
def new_single(name, persona, message, source, max_new_tokens, temperature, request: gr.Request):
    rater = _who(name, request)
    clear = [gr.update(value=None)] * len(AXES)
    try:
        view = None
        if source == "repeat":
            view = arena.open_repeat(get_store(), rater, signed_in.login())  # no other login's chat
            note = t("rate_single_repeat") if view else t("rate_single_no_repeat")
        elif source == "chat":
            view = arena.open_chat_turn(get_store(), rater, signed_in.login())  # own chats only
            note = t("rate_single_chat") if view else t("rate_single_no_chat")
        elif source == "evaluation":
            view = arena.open_eval_reply(get_store(), rater)
            note = t("rate_single_eval") if view else t("rate_single_no_eval")
        if view is None:
            view = arena.open_single(
                get_store(), rater, persona or "", message or "", _settings(max_new_tokens, temperature)
            )
            note = t("rate_single_ready", persona=view.persona_name or "-")
    except RpEvalError as err:
        return gr.skip(), gr.skip(), warn(err), *[gr.skip()] * len(AXES), gr.skip()
    return view.item_id, _chat(view.greeting, view.turns), note, *clear, ""


def save_scores(request: gr.Request, item_id, name, status, comment, *values):
    """Inputs: item, rater, status, comment, then one radio per axis of AXES (request first: Gradio inserts it)."""
    if not item_id:
        return "", gr.skip() if _shows_result(status) else f"⚠️ {t('rate_no_single')}"
    scores = {axis.name: (int(v) if v not in (None, "") else None) for axis, v in zip(AXES, values, strict=True)}
    missing = [re.split(r"[:：]", t(f"rate_axis_{name}"))[0] for name, v in scores.items() if v is None]
    if missing:  # named as the page names them, not by the axes' names in the data
        return item_id, f"⚠️ {t('rate_missing_scores', axes='、'.join(missing) if _ja() else ', '.join(missing))}"
    try:
        reveal = arena.score(get_store(), item_id, _who(name, request), scores, comment or "")
    except RpEvalError as err:
        return item_id, warn(err)
    return "", t("rate_scores_saved", model=reveal.models[0], id=reveal.judgement_id)


def _generation_controls(label: str):
    with gr.Accordion(t(label), open=False):
        max_new = gr.Slider(16, 512, value=128, step=16, label=t("rate_max_new_tokens"))
        temperature = gr.Slider(0, 1.5, value=0.7, step=0.05, label=t("rate_temperature"))
    return max_new, temperature


def build() -> None:
    hub_sync.start_from_env()  # off unless RP_EVAL_RATINGS_HUB_REPO is set (a Space keeping its ratings)
    gr.Markdown(t("rate_intro"))
    rater = gr.Textbox(label=t("rate_rater"), placeholder=t("rate_rater_placeholder"), elem_id="rate-rater")
    # the name is kept in the browser (localStorage), so a rater types it once, not at every page load
    gr.context.Context.root_block.load(None, None, rater, js=f"() => localStorage.getItem('{RATER_KEY}') || ''")
    rater.change(None, rater, None, js=f"(name) => {{ localStorage.setItem('{RATER_KEY}', name || ''); }}")
    with gr.Tabs():
        with gr.Tab(t("rate_pair_tab"), id="rate-pair"):
            item = gr.State("")
            with gr.Row():
                persona = gr.Dropdown(_persona_choices(), value="", label=t("rate_persona"), elem_id="rate-persona")
                opening = gr.Textbox(label=t("rate_opening"), placeholder=t("rate_opening_placeholder"), scale=2)
            max_new, temperature = _generation_controls("rate_settings")
            start = gr.Button(t("rate_new_pair"), variant="primary", elem_id="rate-new-pair")
            with gr.Row():
                chat_a = gr.Chatbot(label="A", height=360, elem_id="rate-chat-a")
                chat_b = gr.Chatbot(label="B", height=360, elem_id="rate-chat-b")
            with gr.Row():
                follow = gr.Textbox(label=t("rate_continue"), placeholder=t("rate_continue_placeholder"), scale=4)
                send = gr.Button(t("rate_send"), elem_id="rate-send", scale=1)
            with gr.Row():
                buttons = [gr.Button(t(label), elem_id=f"rate-{w}") for w, label in VOTES]
            status = gr.Markdown(elem_id="rate-status")
            start.click(
                new_pair,
                [rater, persona, opening, max_new, temperature],
                [item, chat_a, chat_b, status],
                api_name="rate_new_pair",
                trigger_mode="once",
            )
            send.click(continue_pair, [item, follow], [item, chat_a, chat_b, status, follow], api_name="rate_continue")
            for (winner, _), button in zip(VOTES, buttons, strict=True):
                button.click(
                    _vote(winner),
                    [item, rater, status],
                    [item, status],
                    api_name=f"rate_vote_{winner}",
                    trigger_mode="once",
                )
        with gr.Tab(t("rate_single_tab"), id="rate-single"):
            single = gr.State("")
            with gr.Row():
                persona1 = gr.Dropdown(_persona_choices(), value="", label=t("rate_persona"))
                opening1 = gr.Textbox(label=t("rate_opening"), placeholder=t("rate_opening_placeholder"), scale=2)
                source = gr.Radio(
                    [
                        (t("rate_source_live"), "live"),
                        (t("rate_source_chat"), "chat"),
                        (t("rate_source_eval"), "evaluation"),
                        (t("rate_source_repeat"), "repeat"),
                    ],
                    value="live",
                    label=t("rate_source"),
                )
            max_new1, temperature1 = _generation_controls("rate_settings_single")
            start1 = gr.Button(t("rate_new_single"), variant="primary", elem_id="rate-new-single")
            chat = gr.Chatbot(label=t("rate_reply"), height=320, elem_id="rate-chat-single")
            radios = [
                gr.Radio([1, 2, 3, 4, 5], label=t(f"rate_axis_{a.name}"), elem_id=f"rate-axis-{a.name}") for a in AXES
            ]
            comment = gr.Textbox(label=t("rate_comment"), lines=2)
            save = gr.Button(t("rate_save_scores"), variant="primary", elem_id="rate-save-scores")
            status1 = gr.Markdown(elem_id="rate-single-status")
            start1.click(
                new_single,
                [rater, persona1, opening1, source, max_new1, temperature1],
                [single, chat, status1, *radios, comment],
                api_name="rate_new_single",
                trigger_mode="once",
            )
            save.click(
                save_scores,
                [single, rater, status1, comment, *radios],
                [single, status1],
                api_name="rate_save_scores",
                trigger_mode="once",
            )
