"""The static engine's blocks layout and the service admitting by blocks, on the CPU (no graphs).

Every reply is checked against the same request served alone by another service whose pool is large enough
for everything (so nothing there waits, pauses or finds a block cached): a request that waited, was paused and
resumed, or found its beginning in the cache must get exactly that text. After each test the pool is whole
again (`check` verifies its invariants) and no request is left in the admission queue.

The GPU suite (tests/gpu/) runs the blocks layout with CUDA graphs."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM, AutoTokenizer

from rp_eval.chat.blocks import BLOCK_TOKENS
from rp_eval.chat.engine import StaticEngine
from rp_eval.chat.generate import GenerationError, GenerationSettings, StopRules
from rp_eval.chat.service import GenerationService
from tests.conftest import save_tiny

GREEDY = GenerationSettings(temperature=0, max_new_tokens=40, engine="static", trim_to_sentence=False)
SAMPLED = GREEDY.model_copy(update={"temperature": 0.9, "top_p": 0.9, "seed": 21, "repetition_penalty": 1.2})
NO_STOPS = StopRules(frozenset(), ())  # every reply runs to its length: the pool's pressure is the same each run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tokenizer):
    folder = save_tiny(tmp_path_factory.mktemp("blocks") / "m", tokenizer, seed=11)
    model = AutoModelForCausalLM.from_pretrained(folder)
    reference = GenerationService(model, rows=8, columns=512, kv_layout="blocks")
    yield model, AutoTokenizer.from_pretrained(folder), reference
    reference.close()


@pytest.fixture
def small(tiny):
    """A service of 8 rows over a pool of 12 blocks (192 tokens: two or three requests at once), closed and
    checked for leaks after the test."""
    model, tokenizer, _ = tiny
    made = []

    def make(blocks: int = 12, rows: int = 8) -> GenerationService:
        made.append(GenerationService(model, rows=rows, columns=512, kv_layout="blocks", blocks=blocks))
        made[-1].static_engine()
        return made[-1]

    yield make
    for service in made:
        deadline = time.monotonic() + 10
        while (any(service._owners) or service._keys) and time.monotonic() < deadline:
            time.sleep(0.01)
        pool = service.admission.pool
        pool.check()
        assert pool.available == pool.blocks, "blocks leaked"
        assert not service._keys and not any(service._owners) and not service.admission.waiting
        service.close()


def prompt(tokenizer, n: int, salt: int) -> list[int]:
    g = torch.Generator().manual_seed(salt)
    return torch.randint(5, len(tokenizer), (n,), generator=g).tolist()


def ask(service, tokenizer, ids, new=40, settings=GREEDY, streaming=False):
    return service.submit(
        tokenizer, ["p"], [ids], settings.model_copy(update={"max_new_tokens": new}), NO_STOPS, streaming
    )


_refs: dict = {}


def solo(tiny, ids, new=40, settings=GREEDY) -> tuple[str, list[int]]:
    model, tokenizer, reference = tiny
    key = (tuple(ids), new, settings.temperature)
    if key not in _refs:
        request = ask(reference, tokenizer, ids, new, settings)
        result = request.wait()[0]
        _refs[key] = (result.raw_text, list(request.rows[0].ids))
    return _refs[key]


def record_prefills(service) -> list[tuple[int, int]]:
    """(prompt tokens, cached tokens) of every prefill the service's engine runs from now on."""
    engine, calls = service.static_engine(), []
    original = engine.prefill

    def prefill(row, tokens, cached=0, table=None):
        calls.append((len(tokens), cached))
        return original(row, tokens, cached, table)

    engine.prefill = prefill
    return calls


def test_blocks_layout_gives_the_rows_layout_tokens_and_writes_only_its_blocks(tiny):
    """The same greedy tokens as the rows layout for three prompts decoded together; a prefill writes the
    blocks of its table and no other block."""
    model, tokenizer, _ = tiny
    prompts = [prompt(tokenizer, n, n) for n in (5, 16, 37)]
    out = {}
    for layout in ("rows", "blocks"):
        engine = StaticEngine(model, rows=4, columns=256, kv_layout=layout)
        tokens = [[] for _ in prompts]
        with torch.inference_mode():
            for r, ids in enumerate(prompts):
                table = [10 * r + b for b in range(-(-(len(ids) + 30) // BLOCK_TOKENS))]
                logits = engine.prefill(r, ids, 0, table) if layout == "blocks" else engine.prefill(r, ids)
                tokens[r].append(int(logits.argmax(-1)))
                engine.ids[r, 0] = tokens[r][-1]
            if layout == "blocks":
                written = {b for r in range(len(prompts)) for b in engine.tables[r].tolist()[: engine.table_sizes[r]]}
                untouched = [b for b in range(engine.blocks) if b not in written]
                assert all(bool((engine.keys[layer][untouched] == 0).all()) for layer in range(engine.layers))
            for _ in range(24):
                logits = engine.step(4)
                for r in range(len(prompts)):
                    tokens[r].append(int(logits[r].argmax()))
                    engine.ids[r, 0] = tokens[r][-1]
        out[layout] = tokens
    assert out["blocks"] == out["rows"]


def test_a_prompt_from_a_cached_prefix_gets_the_logits_of_its_full_prefill(tiny):
    """Chunks start at fixed positions: the tail prefilled after 32 cached tokens gives the very same logits
    (bit for bit) as the whole prompt prefilled into fresh blocks, and only the tail is prefilled."""
    model, tokenizer, _ = tiny
    engine = StaticEngine(model, rows=4, columns=256, kv_layout="blocks")
    first = prompt(tokenizer, 40, 1)
    second = first[:32] + prompt(tokenizer, 9, 2)
    with torch.inference_mode():
        engine.prefill(0, first, 0, [0, 1, 2])
        before = engine.prefilled
        cached = engine.prefill(1, second, 32, [0, 1, 3])
        assert engine.prefilled - before == 9
        fresh = engine.prefill(2, second, 0, [5, 6, 7])
    assert torch.equal(cached, fresh)
    with pytest.raises(ValueError, match="whole blocks"):
        engine.prefill(3, second, 20, [8, 9, 10])
    with pytest.raises(ValueError, match="needs a table of 3 blocks"):
        engine.prefill(3, second, 0, [8, 9])
    with pytest.raises(ValueError, match="kv_layout must be 'rows' or 'blocks'"):
        StaticEngine(model, rows=1, columns=128, kv_layout="pages")


def test_a_pool_too_small_for_all_requests_makes_them_wait_then_each_gets_its_solo_reply(tiny, small):
    """Six requests (two of them sampled with a seed and penalties) on 12 blocks: they wait for blocks, the
    newest is paused when the pool runs short and resumed from its cached prefix, and every reply is its solo
    reply."""
    _, tokenizer, _ = tiny
    service = small(blocks=12)
    jobs = [(prompt(tokenizer, 20 + 7 * i, 100 + i), SAMPLED if i in (1, 4) else GREEDY) for i in range(6)]
    expected = [solo(tiny, ids, 40, s)[0] for ids, s in jobs]
    requests = [ask(service, tokenizer, ids, 40, s) for ids, s in jobs]
    got = [r.wait()[0] for r in requests]
    assert [g.raw_text for g in got] == expected
    assert all(g.new_tokens == 40 for g in got)
    assert service.paused >= 1  # the pool ran short mid-reply at least once
    assert max(g.waited_seconds for g in got) > 0 and service.largest_batch >= 2


def test_a_request_longer_than_the_whole_pool_is_refused_before_any_work(tiny, small):
    _, tokenizer, _ = tiny
    service = small(blocks=4)  # 64 tokens
    engine = service.static_engine()
    fits = prompt(tokenizer, 20, 7)
    beside = ask(service, tokenizer, fits, 30)
    steps, prefilled = service.steps, engine.prefilled
    too_long = ask(service, tokenizer, prompt(tokenizer, 50, 8), 40)
    with pytest.raises(GenerationError, match=r"50 tokens and 40 new ones need 6 blocks of 16; the KV pool holds 4 "):
        too_long.wait()
    assert beside.wait()[0].raw_text == solo(tiny, fits, 30)[0]  # the request beside it is not disturbed
    assert engine.prefilled - prefilled <= len(fits) and service.steps - steps <= 30


def test_two_chats_with_one_system_prompt_share_its_blocks_and_keep_their_own_replies(tiny, small):
    """The second chat, arriving while the first runs, finds the system prompt's full blocks cached and
    prefills only what follows them; neither reply changes (no cross-talk)."""
    _, tokenizer, _ = tiny
    service = small(blocks=30)
    calls = record_prefills(service)
    system = prompt(tokenizer, 45, 30)  # two full blocks and part of a third
    a, b = system + prompt(tokenizer, 12, 31), system + prompt(tokenizer, 20, 32)
    first = ask(service, tokenizer, a, 40, streaming=True)
    next(first.texts())  # its prefill is done
    second = ask(service, tokenizer, b, 40)
    assert [first.wait()[0].raw_text, second.wait()[0].raw_text] == [solo(tiny, a)[0], solo(tiny, b)[0]]
    assert calls == [(len(a), 0), (len(b), 32)]


def test_the_next_turn_of_a_conversation_prefills_only_its_new_text(tiny, small):
    """Turn 2 is turn 1's prompt, its reply and a new message: the blocks written during turn 1 (prompt and
    reply) are found cached, so the prefill covers the new message and at most the last partial block."""
    _, tokenizer, _ = tiny
    service = small(blocks=30)
    calls = record_prefills(service)
    turn1 = prompt(tokenizer, 50, 40)
    request = ask(service, tokenizer, turn1, 40)
    request.wait()
    reply = list(request.rows[0].ids)
    new = prompt(tokenizer, 11, 41)
    turn2 = turn1 + reply + new
    second = ask(service, tokenizer, turn2, 20)
    result = second.wait()[0]
    (_, cached1), (length, cached2) = calls
    assert cached1 == 0 and length == len(turn2)
    # written: the prompt and every reply token but the last (never fed back), in whole blocks
    assert cached2 == (len(turn1) + len(reply) - 1) // BLOCK_TOKENS * BLOCK_TOKENS
    assert length - cached2 < len(new) + BLOCK_TOKENS
    # the cached reply blocks were computed by decode steps, the reference prefills them: the same tokens here
    assert result.raw_text == solo(tiny, turn2, 20)[0]


def test_cancel_while_paused_and_while_waiting_gives_the_blocks_back(tiny, small):
    _, tokenizer, _ = tiny
    service = small(blocks=24)  # 384 tokens
    long_ids, newer_ids = prompt(tokenizer, 40, 50), prompt(tokenizer, 40, 51)
    first = ask(service, tokenizer, long_ids, 300, streaming=True)
    next(first.texts())
    newer = ask(service, tokenizer, newer_ids, 200)
    deadline = time.monotonic() + 30
    row = newer.rows[0]
    while not (row.ids and row.slot == -1) and time.monotonic() < deadline:  # paused: has tokens, no row
        time.sleep(0.001)
    assert row.ids and row.slot == -1 and service.paused >= 1
    waiting = ask(service, tokenizer, prompt(tokenizer, 30, 52), 20)  # behind the paused one
    time.sleep(0.05)
    newer.cancel()
    waiting.cancel()
    for cancelled in (newer, waiting):
        with pytest.raises(GenerationError, match="cancelled"):
            cancelled.wait()
    assert first.wait()[0].raw_text == solo(tiny, long_ids, 300)[0]


def test_unloading_ends_waiting_and_paused_requests_with_a_message(tiny, small):
    _, tokenizer, _ = tiny
    service = small(blocks=10)
    requests = [ask(service, tokenizer, prompt(tokenizer, 40, 60 + i), 80) for i in range(4)]
    time.sleep(0.05)
    service.close(wait=10)
    for request in requests:
        try:
            request.wait()
        except GenerationError as err:
            assert "unloaded" in str(err)
    assert any(r.error is not None for r in requests)


SCHEDULE = st.lists(
    st.tuples(
        st.integers(0, 5),  # which prompt
        st.sampled_from([8, 24, 40]),  # max_new_tokens
        st.floats(0, 0.03),  # arrival delay (s)
        st.one_of(st.none(), st.integers(0, 6)),  # cancel after this many updates
    ),
    min_size=2,
    max_size=7,
)


@hsettings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=SCHEDULE)
def test_any_arrival_cancel_and_pause_schedule_gives_every_greedy_reply_its_solo_text(tiny, small, schedule):
    _, tokenizer, _ = tiny
    service = small(blocks=10)  # 160 tokens: requests of 30-65 + 8-40 tokens wait and are paused
    prompts = [prompt(tokenizer, 30 + 7 * i, 200 + i) for i in range(6)]
    refs = {(p, n): solo(tiny, prompts[p], n)[0] for p, n, _, _ in schedule}
    out: list = [None] * len(schedule)
    errors = []

    def job(i):
        p, n, delay, cancel_after = schedule[i]
        try:
            time.sleep(delay)
            request = ask(service, tokenizer, prompts[p], n, streaming=True)
            for k, _ in enumerate(request.texts()):
                if cancel_after is not None and k >= cancel_after:
                    request.cancel()
            if cancel_after is None:
                out[i] = request.results[0].raw_text
        except GenerationError as err:
            if "cancelled" not in str(err):
                errors.append(err)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(len(schedule))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for (p, n, _, cancel_after), text in zip(schedule, out, strict=True):
        if cancel_after is None:
            assert text == refs[(p, n)]


def test_a_paused_seeded_sampled_reply_keeps_its_text(tiny, small):
    """The newest request (sampled: temperature, top-p, a repetition penalty, a seed) is paused while a long
    one runs and resumed when it finishes: its sampler's random state and penalty counts are as they were, so
    the reply is its solo reply."""
    _, tokenizer, _ = tiny
    service = small(blocks=24)
    long_ids, sampled_ids = prompt(tokenizer, 40, 70), prompt(tokenizer, 40, 71)
    first = ask(service, tokenizer, long_ids, 300, streaming=True)
    next(first.texts())
    sampled = ask(service, tokenizer, sampled_ids, 200, SAMPLED)
    assert sampled.wait()[0].raw_text == solo(tiny, sampled_ids, 200, SAMPLED)[0]
    assert service.paused >= 1 and first.wait()[0].raw_text == solo(tiny, long_ids, 300)[0]


def test_a_paused_reply_with_dry_and_banned_strings_keeps_its_text(tiny, small):
    """DRY looks back over the reply so far and a banned string can span the pause: both are restored on resume
    (greedy, on a prompt that repeats itself: DRY decides most tokens), and the reply is its solo reply. Without
    the reply restored into DRY's history the text after the resume differs."""
    _, tokenizer, reference = tiny
    settings = GREEDY.model_copy(update={"dry_multiplier": 3.0, "dry_allowed_length": 1, "banned_strings": ("ab",)})
    service = small(blocks=24)
    long_ids, looped = prompt(tokenizer, 40, 72), prompt(tokenizer, 10, 73) * 4
    alone = ask(reference, tokenizer, looped, 200, settings).wait()[0].raw_text
    first = ask(service, tokenizer, long_ids, 300, streaming=True)
    next(first.texts())
    paused = ask(service, tokenizer, looped, 200, settings)
    assert paused.wait()[0].raw_text == alone
    assert service.paused >= 1 and first.wait()[0].raw_text == solo(tiny, long_ids, 300)[0]


def test_a_batch_whose_prompts_share_a_beginning_prefills_it_once(tiny, small):
    """Three prompts of one request (an evaluation batch: one persona's system text): admitted one after the
    other, the second and third find the first one's full blocks; each reply is its solo reply."""
    _, tokenizer, _ = tiny
    service = small(blocks=40)
    calls = record_prefills(service)
    system = prompt(tokenizer, 50, 80)
    prompts = [system + prompt(tokenizer, 5 + 6 * k, 81 + k) for k in range(3)]
    request = service.submit(tokenizer, ["a", "b", "c"], prompts, GREEDY, NO_STOPS)
    assert [r.raw_text for r in request.wait()] == [solo(tiny, p)[0] for p in prompts]
    assert calls == [(len(prompts[0]), 0), (len(prompts[1]), 48), (len(prompts[2]), 48)]


def test_a_longer_prefill_chunk_never_rewrites_a_shared_block(tiny):
    """prefill_chunk=64: a prompt whose cached prefix (32 tokens) ends inside its first chunk recomputes that
    chunk, writing the cached positions to the spare block: the shared blocks keep their bits, the logits are
    those of the full prefill to float tolerance, and a chunk that is not whole blocks is refused."""
    model, tokenizer, _ = tiny
    engine = StaticEngine(model, rows=4, columns=256, kv_layout="blocks", prefill_chunk=64)
    first = prompt(tokenizer, 40, 1)
    second = first[:32] + prompt(tokenizer, 60, 2)
    with torch.inference_mode():
        engine.prefill(0, first, 0, [0, 1, 2])
        shared = [engine.keys[layer][[0, 1]].clone() for layer in range(engine.layers)]
        cached = engine.prefill(1, second, 32, [0, 1, 3, 4, 5, 6])
        assert all(torch.equal(engine.keys[layer][[0, 1]], shared[layer]) for layer in range(engine.layers))
        fresh = engine.prefill(2, second, 0, [7, 8, 9, 10, 11, 12])
    assert torch.allclose(cached, fresh, atol=1e-5) and int(cached.argmax()) == int(fresh.argmax())
    with pytest.raises(ValueError, match="multiple of 16"):
        StaticEngine(model, rows=1, columns=128, kv_layout="blocks", prefill_chunk=40)
