"""Rating sessions: a blind pair (two models, the same persona, opening and settings) or a single reply to score.

Replies come from `rp_eval.chat.generate` on models from the shared model cache. What the rater's page gets is a
view (`PairView`, `SingleView`) with an opaque item id and the texts, never a model name; the names stay in the
store until the judgement is saved, and come back in the `Reveal`.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from rp_eval.chat.formats import Message
from rp_eval.chat.generate import PAGE, GenerationResult, GenerationSettings, generate
from rp_eval.ratings import sampling
from rp_eval.ratings.records import WINNERS, RatingError, check_scores, item_key
from rp_eval.store import Store
from rp_eval.store import ratings as table

# First lines a rater can start from when they do not type their own; they fit any persona's scene.
OPENING_LINES = [
    "はじめまして。少しお話ししてもいいですか？",
    "最近、何か楽しいことはありましたか？",
    "実は道に迷ってしまって……この辺りに詳しいですか？",
    "ちょっと相談に乗ってほしいことがあるんだけど、いいかな。",
    "あなたの一番好きな食べ物って何ですか？",
    "今日はずいぶん疲れているように見えますね。何かあったんですか？",
    "昔の話を聞かせてもらえませんか。どんなふうに過ごしてきたのか気になります。",
    "もしも一日だけ自由に過ごせるとしたら、何をしたいですか？",
    "さっきから気になっていたんですが、それは何ですか？",
    "明日、大事な用事があって緊張しているんです。何か一言もらえませんか。",
]

Reply = Callable[[str, list[Message], GenerationSettings], GenerationResult]


def live_reply(model: str, messages: list[Message], settings: GenerationSettings) -> GenerationResult:
    from rp_eval.models.loading import model_cache

    loaded = model_cache().get(model)
    return generate(loaded.model, loaded.tokenizer, loaded.format, messages, settings, priority=PAGE)


@dataclass
class PairView:
    item_id: str
    persona_name: str
    greeting: str
    turns: list[tuple[str, str, str]] = field(default_factory=list)  # (user, reply A, reply B)


@dataclass
class SingleView:
    item_id: str
    persona_name: str
    greeting: str
    turns: list[tuple[str, str]] = field(default_factory=list)  # (user, reply)


@dataclass
class Reveal:
    models: list[str]  # [A, B] or [model]
    finish_reasons: list[list[str]]
    judgement_id: int


def _rater(rater: str) -> str:
    rater = (rater or "").strip()
    if not rater:
        raise RatingError(key="err_rating_no_name")
    return rater[:200]


@functools.cache
def _personas_as_of(signature: tuple) -> dict:
    from rp_eval.chat.personas import PERSONAS_DIR, load_personas

    return load_personas(PERSONAS_DIR)


def personas() -> dict:
    """The personas, re-read only when a file changed (parsing the YAML costs ~60 ms, every pair would pay it)."""
    from rp_eval.chat.personas import PERSONAS_DIR

    return _personas_as_of(tuple((p.name, p.stat().st_mtime_ns) for p in sorted(PERSONAS_DIR.glob("*.yaml"))))


def _opening(persona_id: str, rng: random.Random) -> tuple[str, str, list[Message]]:
    """(persona id, persona name, opening messages) for a persona id, or a random persona when empty."""
    personas_now = personas()
    if not personas_now:
        return "", "", []
    if persona_id and persona_id not in personas_now:
        raise RatingError(key="err_rating_persona", persona=persona_id, known=", ".join(personas_now))
    persona = personas_now[persona_id] if persona_id else personas_now[rng.choice(sorted(personas_now))]
    return persona.id, persona.name, list(persona.opening())


def _turns(conversation: list[dict]) -> tuple[str, list[tuple[str, str]]]:
    """(greeting, [(user, reply)]) from a stored conversation."""
    body = [m for m in conversation if m["role"] != "system"]
    greeting = body[0]["content"] if body and body[0]["role"] == "assistant" else ""
    body = body[1:] if greeting else body
    pairs = [(u["content"], r["content"]) for u, r in zip(body[::2], body[1::2], strict=False)]
    return greeting, pairs


def _persona_name(item: table.RatingItemRow) -> str:
    return item.settings.get("persona_name", "")


def pair_view(item: table.RatingItemRow) -> PairView:
    greeting, a = _turns(item.conversations[0])
    _, b = _turns(item.conversations[1])
    return PairView(
        item.id, _persona_name(item), greeting, [(u, ra, rb) for (u, ra), (_, rb) in zip(a, b, strict=True)]
    )


def single_view(item: table.RatingItemRow) -> SingleView:
    greeting, turns = _turns(item.conversations[0])
    return SingleView(item.id, _persona_name(item), greeting, turns)


def _models(store: Store) -> list[str]:
    from rp_eval.models import registry

    return [r.name for r in registry.list_models()]


def _answer(models: list[str], conversations: list[list], message: str, settings, reply: Reply):
    finish = []
    for model, conversation in zip(models, conversations, strict=True):
        conversation.append({"role": "user", "content": message})
        result = reply(model, conversation, settings)
        conversation.append({"role": "assistant", "content": result.text})
        finish.append(result.finish_reason)
    return finish


def _first_message(message: str, rng: random.Random) -> str:
    return message.strip() or rng.choice(OPENING_LINES)


def open_pair(
    store: Store,
    rater: str,
    persona_id: str = "",
    message: str = "",
    settings: GenerationSettings = GenerationSettings(),
    models: list[str] | None = None,
    reply: Reply = live_reply,
    rng: random.Random | None = None,
) -> PairView:
    """Pick a pair (few votes first), let both answer the same opening with the same settings, store it."""
    rng = rng or random.Random()
    rater = _rater(rater)
    a, b = sampling.pick_pair(models if models is not None else _models(store), table.pair_counts(store), rng)
    persona, name, opening = _opening(persona_id, rng)
    conversations = [list(opening), list(opening)]
    finish = _answer([a, b], conversations, _first_message(message, rng), settings, reply)
    item = table.RatingItemRow(
        kind="pair",
        rater=rater,
        persona_id=persona,
        models=[a, b],
        settings={**settings.model_dump(mode="json"), "persona_name": name},
        conversations=conversations,
        finish_reasons=[[finish[0]], [finish[1]]],
    )
    return pair_view(table.open_item(store, item))


def continue_item(store: Store, item_id: str, message: str, reply: Reply = live_reply) -> PairView | SingleView:
    """One more turn of an open pair (both models answer the same message) or single reply."""
    if not (message or "").strip():
        raise RatingError(key="err_rating_no_message")
    item = table.get_item(store, item_id)
    if item.closed:
        raise RatingError(key="err_rating_closed")
    settings = GenerationSettings(**{k: v for k, v in item.settings.items() if k != "persona_name"})
    conversations = [list(c) for c in item.conversations]
    finish = _answer(item.models, conversations, message.strip(), settings, reply)
    reasons = [[*old, new] for old, new in zip(item.finish_reasons, finish, strict=True)]
    item = table.update_item(store, item_id, conversations, reasons)
    return pair_view(item) if item.kind == "pair" else single_view(item)


def vote(store: Store, item_id: str, rater: str, winner: str) -> Reveal:
    """Store the vote (one transaction) and reveal the two models."""
    rater = _rater(rater)
    if winner not in WINNERS:
        raise RatingError(key="err_rating_winner", known=", ".join(WINNERS), winner=winner)
    item = table.get_item(store, item_id)
    if item.kind != "pair":
        raise RatingError(key="err_rating_single")
    conv_a, conv_b = item.conversations
    key = item_key(sorted([(item.models[0], conv_a), (item.models[1], conv_b)]))
    row = table.add_vote(
        store,
        table.VoteRow(
            item_id=item.id,
            rater=rater,
            persona_id=item.persona_id,
            prompt=next((m["content"] for m in conv_a if m["role"] == "user"), ""),
            model_a=item.models[0],
            model_b=item.models[1],
            winner=winner,
            conversation_a=conv_a,
            conversation_b=conv_b,
            finish_a=item.finish_reasons[0],
            finish_b=item.finish_reasons[1],
            turns=sum(m["role"] == "user" for m in conv_a),
            settings=item.settings,
            item_key=key,
        ),
    )
    return Reveal(list(item.models), item.finish_reasons, row.id)


def open_single(
    store: Store,
    rater: str,
    persona_id: str = "",
    message: str = "",
    settings: GenerationSettings = GenerationSettings(),
    models: list[str] | None = None,
    reply: Reply = live_reply,
    rng: random.Random | None = None,
) -> SingleView:
    """A reply of one model (chosen at random, not shown) to score on the Likert axes."""
    rng = rng or random.Random()
    rater = _rater(rater)
    names = models if models is not None else _models(store)
    if not names:
        raise RatingError(key="err_rating_no_models")
    model = rng.choice(names)
    persona, name, opening = _opening(persona_id, rng)
    conversation = list(opening)
    finish = _answer([model], [conversation], _first_message(message, rng), settings, reply)
    item = table.RatingItemRow(
        kind="single",
        rater=rater,
        persona_id=persona,
        models=[model],
        settings={**settings.model_dump(mode="json"), "persona_name": name},
        conversations=[conversation],
        finish_reasons=[finish],
    )
    return single_view(table.open_item(store, item))


def open_stored(
    store: Store,
    rater: str,
    model: str,
    conversation: list[Message],
    finish_reason: str = "",
    source_kind: str | None = None,
    source_id: str | None = None,
    persona_id: str = "",
    persona_name: str = "",
    settings: dict | None = None,
) -> SingleView:
    """A reply that already exists (a stored chat turn, an evaluation output) opened for scoring.

    `conversation` ends with the reply; (source_kind, source_id) points back at where it came from.
    """
    rater = _rater(rater)
    if not conversation or conversation[-1]["role"] != "assistant":
        raise RatingError(key="err_rating_stored_reply")
    item = table.RatingItemRow(
        kind="single",
        rater=rater,
        persona_id=persona_id,
        models=[model],
        settings={**(settings or {}), "persona_name": persona_name},
        conversations=[list(conversation)],
        finish_reasons=[[finish_reason]],
        source_kind=source_kind,
        source_id=source_id,
    )
    return single_view(table.open_item(store, item))


def open_repeat(store: Store, rater: str, owner: str, rng: random.Random | None = None) -> SingleView | None:
    """A reply another rater scored, shown to this rater too (for agreement); None when there is none. A reply
    from a stored chat is repeated only to its owner's login (`owner`, "" without one)."""
    rater = _rater(rater)
    candidates = table.scores_to_repeat(store, rater, owner)
    if not candidates:
        return None
    earlier = (rng or random.Random()).choice(candidates)
    return open_stored(
        store,
        rater,
        earlier.model,
        earlier.conversation,
        earlier.finish_reason,
        earlier.source_kind or "score",
        earlier.source_id or str(earlier.id),
        earlier.persona_id,
        earlier.settings.get("persona_name", ""),
        earlier.settings,
    )


def open_chat_turn(store: Store, rater: str, owner: str) -> SingleView | None:
    """A reply from one of `owner`'s stored chats (the Chat tab's turns of that login, "" without one), with the
    conversation before it, for scoring."""
    from rp_eval.store import chat

    rater = _rater(rater)
    turn = table.chat_turn_to_score(store, rater, owner)
    if turn is None:
        return None
    conversation = chat.get_conversation(store, turn.conversation_id, owner)
    history = [t for t in chat.turns(store, turn.conversation_id) if t.id <= turn.id and t.side in ("", turn.side)]
    messages = [{"role": "system", "content": conversation.system_prompt}] if conversation.system_prompt else []
    messages += [{"role": t.role, "content": t.content} for t in history if t.role in ("user", "assistant")]
    return open_stored(
        store,
        rater,
        turn.model,
        messages,
        turn.finish_reason,
        "chat_turn",
        str(turn.id),
        conversation.persona_id,
        (conversation.persona or {}).get("name", ""),
        dict(turn.settings or {}),
    )


def open_eval_reply(store: Store, rater: str) -> SingleView | None:
    """An evaluation output with the conversation it answered (the task item, rebuilt from prompts/eval and the
    persona), for scoring; None when there is none left (or its item is no longer in the task)."""
    from rp_eval.evaluate.task import load_task

    rater = _rater(rater)
    found = table.eval_reply_to_score(store, rater)
    if found is None:
        return None
    reply, model = found
    task = load_task()
    item = next((i for i in task.items if i.id == reply.item_id), None)
    if item is None or item.persona not in task.personas:
        return None
    persona = task.personas[item.persona]
    conversation = [*item.messages(persona), {"role": "assistant", "content": reply.text}]
    return open_stored(
        store,
        rater,
        model,
        conversation,
        reply.finish_reason,
        "eval_reply",
        str(reply.id),
        persona.id,
        persona.name,
        {"eval_item": item.id},
    )


def score(store: Store, item_id: str, rater: str, scores: dict[str, int], comment: str = "") -> Reveal:
    """Store the Likert scores of a single reply (one transaction) and reveal its model."""
    rater = _rater(rater)
    values = check_scores(scores)
    item = table.get_item(store, item_id)
    if item.kind != "single":
        raise RatingError(key="err_rating_pair")
    conversation = item.conversations[0]
    row = table.add_score(
        store,
        table.ScoreRow(
            item_id=item.id,
            rater=rater,
            persona_id=item.persona_id,
            prompt=next((m["content"] for m in conversation if m["role"] == "user"), ""),
            model=item.models[0],
            conversation=conversation,
            reply=conversation[-1]["content"],
            finish_reason=item.finish_reasons[0][-1] if item.finish_reasons[0] else "",
            scores=values,
            comment=(comment or "").strip(),
            settings=item.settings,
            source_kind=item.source_kind,
            source_id=item.source_id,
            item_key=item_key(item.models[0], conversation),
        ),
    )
    return Reveal(list(item.models), item.finish_reasons, row.id)
