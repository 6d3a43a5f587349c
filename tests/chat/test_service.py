"""The generation service under concurrency, on the CPU with the static engine (no graphs): every greedy reply
must be exactly the reply the same request gets alone, whatever runs beside it, whenever it arrives or leaves.

The GPU suite (tests/gpu/) runs the same cases with CUDA graphs."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM, AutoTokenizer

from rp_eval.chat.formats import FORMATS
from rp_eval.chat.generate import GenerationError, GenerationSettings, generate, generate_batch, stop_rules, stream
from rp_eval.chat.service import GenerationService, own
from tests.conftest import save_tiny

FMT = FORMATS["template"]
GREEDY = GenerationSettings(temperature=0, max_new_tokens=24, engine="static")
TOPICS = ["こんにちは", "今日の天気は？", "好きな食べ物を教えて", "剣の稽古をしよう", "昔話をして", "眠れないんだ"]


def conversation(i: int, turns: int = 1) -> list[dict]:
    out = [{"role": "system", "content": "あなたは港町の案内人です。"}]
    for t in range(turns):
        out.append({"role": "user", "content": TOPICS[(i + t) % len(TOPICS)] + "。" * (i % 3)})
        if t + 1 < turns:
            out.append({"role": "assistant", "content": "ええ、" + TOPICS[(i + t + 1) % len(TOPICS)]})
    return out


@pytest.fixture(scope="module", params=["rows", "blocks"])
def served(tmp_path_factory, tokenizer, request):
    """A tiny Llama with 2,048 positions and a service of 8 rows × 640 columns (so some requests do not fit),
    its KV cache as whole rows (CUDA's default layout) and as blocks (the CPU's)."""
    folder = save_tiny(tmp_path_factory.mktemp("served") / "m", tokenizer, max_position_embeddings=2048, seed=3)
    model = AutoModelForCausalLM.from_pretrained(folder)
    service = GenerationService(model, rows=8, columns=640, kv_layout=request.param)
    own(model, service)
    return model, AutoTokenizer.from_pretrained(folder), service


@pytest.fixture(scope="module")
def other(tmp_path_factory, tokenizer):
    folder = save_tiny(tmp_path_factory.mktemp("other") / "m", tokenizer, architecture="mistral", seed=5)
    model = AutoModelForCausalLM.from_pretrained(folder)
    service = GenerationService(model, rows=4, columns=128)
    own(model, service)
    return model, AutoTokenizer.from_pretrained(folder), service


def solo(model, tokenizer, conv, settings=GREEDY):
    return generate(model, tokenizer, FMT, conv, settings)


def run_threads(fn, n):
    barrier = threading.Barrier(n)
    out, errors = [None] * n, []

    def work(i):
        try:
            barrier.wait()
            out[i] = fn(i)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return out


def test_eight_threads_on_one_model_get_their_solo_replies(served):
    model, tokenizer, service = served
    convs = [conversation(i, turns=1 + i % 3) for i in range(8)]
    reference = [solo(model, tokenizer, c) for c in convs]
    assert service.largest_batch == 1
    for _ in range(3):
        got = run_threads(lambda i: solo(model, tokenizer, convs[i]), 8)
        assert [g.raw_text for g in got] == [r.raw_text for r in reference]
        assert [g.finish_reason for g in got] == [r.finish_reason for r in reference]
    assert service.largest_batch >= 2  # they did share decode steps
    assert not any(service._owners)  # every row given back


def test_sampled_rows_keep_their_own_seed_beside_others(served):
    model, tokenizer, service = served
    sampled = GREEDY.model_copy(update={"temperature": 0.9, "top_p": 0.8, "top_k": 40, "min_p": 0.05, "seed": 11})
    penalised = GREEDY.model_copy(update={"repetition_penalty": 1.3, "presence_penalty": 0.5, "frequency_penalty": 0.3})
    cases = [
        (conversation(0), sampled),
        (conversation(1), penalised),
        (conversation(2), GREEDY),
        (conversation(3), sampled),
    ]
    reference = [solo(model, tokenizer, c, s).raw_text for c, s in cases]
    got = run_threads(lambda i: solo(model, tokenizer, *cases[i]).raw_text, len(cases))
    assert got == reference
    assert reference[0] != solo(model, tokenizer, conversation(0), sampled.model_copy(update={"seed": 12})).raw_text


def test_interleaved_streams_of_one_model_and_of_two_models(served, other):
    """As a side-by-side chat does: one thread advances several streams a step each in turn; the consumer's
    thread never enters inference mode, and each stream's text is its solo text."""
    (m1, t1, _), (m2, t2, _) = served, other
    jobs = [
        (m1, t1, conversation(0)),
        (m1, t1, conversation(4, 2)),
        (m2, t2, conversation(1)),
        (m2, t2, conversation(2)),
    ]
    reference = [solo(m, t, c).text for m, t, c in jobs]
    streams = [stream(m, t, FMT, c, GREEDY) for m, t, c in jobs]
    texts, done = [""] * len(jobs), [False] * len(jobs)
    while not all(done):
        for i, s in enumerate(streams):
            if done[i]:
                continue
            item = next(s)
            assert not torch.is_inference_mode_enabled()
            if isinstance(item, str):
                texts[i] += item
            else:
                done[i] = True
                assert item.text == reference[i] and texts[i].startswith(item.text)  # trimmed at the cap: shorter


def test_a_stream_resumed_on_other_threads_keeps_working(served):
    model, tokenizer, _ = served
    reference = solo(model, tokenizer, conversation(5)).text
    s = stream(model, tokenizer, FMT, conversation(5), GREEDY)
    pieces = []
    while True:
        box = []
        t = threading.Thread(target=lambda out=box: out.append(next(s)))  # each step on a new thread, as a pool does
        t.start()
        t.join(30)
        if not isinstance(box[0], str):
            break
        pieces.append(box[0])
    assert box[0].text == reference and "".join(pieces).startswith(reference)


def ids_of_length(tokenizer, n: int, salt: int = 0) -> list[int]:
    vocab = len(tokenizer)
    return [5 + (7 * i + 13 * salt) % (vocab - 10) for i in range(n)]


@pytest.mark.parametrize("length", [1, 127, 128, 129, 255, 256, 257, 600, 615, 616, 617, 1500])
def test_prompt_lengths_on_both_sides_of_every_bucket_and_limit(served, length):
    """Exact prompt lengths around the 128-buckets, around the cache's 640 columns (with 24 new tokens and
    a spare column, 615 fits and 616 runs on its own eager engine) and far past them; alone and beside three other requests."""
    model, tokenizer, service = served
    rules = stop_rules(tokenizer, model, FMT)
    prompt = ids_of_length(tokenizer, length)
    greedy = GREEDY.model_copy(update={"stop_strings": ()})

    def run(encoded, settings=greedy):
        return service.submit(tokenizer, ["p"] * len(encoded), encoded, settings, rules).wait()

    (alone,) = run([prompt])
    (eager,) = run([prompt], greedy.model_copy(update={"engine": "eager"}))
    assert alone.raw_text == eager.raw_text
    neighbours = [ids_of_length(tokenizer, 50 + 40 * k, salt=k) for k in range(3)]
    got = run_threads(lambda i: run([prompt] if i == 0 else [neighbours[i - 1]])[0], 4)
    assert got[0].raw_text == alone.raw_text and got[0].new_tokens == alone.new_tokens


def test_a_conversation_longer_than_the_context_drops_its_oldest_turns_or_is_refused(served):
    model, tokenizer, _ = served
    long = [{"role": "system", "content": "案内人です。"}]
    for i in range(60):
        long += [
            {"role": "user", "content": f"{i}番目の質問です。" * 8},
            {"role": "assistant", "content": "はい。" * 20},
        ]
    long.append({"role": "user", "content": "最後の質問です"})
    result = generate(model, tokenizer, FMT, long, GREEDY)
    assert result.dropped_turns > 0 and result.prompt_tokens <= 2048 - GREEDY.max_new_tokens
    assert "最後の質問です" in result.prompt and "案内人です。" in result.prompt
    with pytest.raises(GenerationError, match="tokens; this model reads 2048"):
        generate(model, tokenizer, FMT, long, GREEDY.model_copy(update={"overflow": "refuse"}))
    with pytest.raises(GenerationError, match="max_new_tokens is 4000"):
        generate(model, tokenizer, FMT, long, GREEDY.model_copy(update={"max_new_tokens": 4000}))


def test_cancel_in_the_middle_frees_the_row_and_leaves_the_others_alone(served):
    model, tokenizer, service = served
    settings = GREEDY.model_copy(update={"max_new_tokens": 60, "trim_to_sentence": False})
    convs = [conversation(i) for i in range(3)]
    reference = [solo(model, tokenizer, c, settings).raw_text for c in convs]
    cancelled = stream(model, tokenizer, FMT, convs[0], settings)
    next(cancelled)
    others = run_threads(lambda i: solo(model, tokenizer, convs[i + 1], settings).raw_text, 2)
    cancelled.close()  # a Stop button, a closed page
    assert others == reference[1:]
    deadline = time.monotonic() + 10
    while any(service._owners) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(service._owners)


def test_batches_and_chats_share_the_service(served):
    model, tokenizer, _ = served
    convs = [conversation(i, 1 + i % 2) for i in range(6)]
    batch_alone = generate_batch(model, tokenizer, FMT, convs, GREEDY)
    chat_ref = solo(model, tokenizer, conversation(3, 3)).raw_text
    got = run_threads(
        lambda i: (
            generate_batch(model, tokenizer, FMT, convs, GREEDY)
            if i == 0
            else solo(model, tokenizer, conversation(3, 3))
        ),
        3,
    )
    assert [r.raw_text for r in got[0]] == [r.raw_text for r in batch_alone]
    assert got[1].raw_text == got[2].raw_text == chat_ref


def test_an_unloaded_model_ends_its_requests_with_a_message_and_no_one_else_s(tmp_path, tokenizer, other):
    folder = save_tiny(tmp_path / "m", tokenizer, max_position_embeddings=2048)
    model, tok = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    service = GenerationService(model, rows=2, columns=512)
    own(model, service)
    long = GREEDY.model_copy(update={"max_new_tokens": 400, "trim_to_sentence": False})
    s = stream(model, tok, FMT, conversation(0), long)
    next(s)
    m2, t2, _ = other
    survivor = stream(m2, t2, FMT, conversation(1), GREEDY)
    service.close()
    with pytest.raises(GenerationError, match="unloaded"):
        list(s)
    with pytest.raises(GenerationError, match="unloaded"):
        service.submit(tok, ["x"], [[5, 6]], GREEDY, stop_rules(tok, model, FMT))
    assert list(survivor)[-1].text == solo(m2, t2, conversation(1)).text
    finished = service  # cancelling a request that has finished is harmless
    request = GenerationService(m2).submit(t2, ["x"], [[5, 6, 7]], GREEDY, stop_rules(t2, m2, FMT))
    request.wait()
    request.cancel()
    assert request.results and finished.closed


SCHEDULE = st.lists(
    st.tuples(
        st.integers(0, 5),  # which conversation
        st.sampled_from([8, 24, 40]),  # max_new_tokens
        st.floats(0, 0.05),  # arrival delay (s)
        st.one_of(st.none(), st.integers(0, 6)),  # cancel after this many deltas
    ),
    min_size=2,
    max_size=8,
)


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=SCHEDULE)
def test_any_arrival_and_cancel_schedule_gives_every_greedy_reply_its_solo_text(served, schedule):
    model, tokenizer, service = served
    refs = {}
    for conv, cap, _, _ in schedule:
        settings = GREEDY.model_copy(update={"max_new_tokens": cap})
        refs.setdefault((conv, cap), solo(model, tokenizer, conversation(conv), settings))

    def job(i):
        conv, cap, delay, cancel_after = schedule[i]
        time.sleep(delay)
        s = stream(model, tokenizer, FMT, conversation(conv), GREEDY.model_copy(update={"max_new_tokens": cap}))
        for n, item in enumerate(s):
            if cancel_after is not None and n >= cancel_after and isinstance(item, str):
                s.close()
                return None
            if not isinstance(item, str):
                return item

    got = run_threads(job, len(schedule))
    for (conv, cap, _, _), result in zip(schedule, got, strict=True):
        if result is not None:
            assert result.raw_text == refs[(conv, cap)].raw_text
            assert result.finish_reason == refs[(conv, cap)].finish_reason
    deadline = time.monotonic() + 10
    while any(service._owners) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(service._owners)


def test_arrivals_during_a_prefill_are_prefilled_before_the_next_step(served):
    """A burst of chats: whatever arrives while the scheduler prefills is prefilled before the next decode
    step (each first token waits for the burst's prefills, not for steps in between), and every reply is still
    its solo reply."""
    model, tokenizer, service = served
    engine = service.static_engine()
    original, arrivals, seen = engine.prefill, [], []

    def prefill(row, prompt, *table):  # the first prefill of the burst brings three more requests while it runs
        if not arrivals:
            for i in (1, 2, 3):
                arrivals.append(
                    threading.Thread(target=lambda i=i: seen.append((i, solo(model, tokenizer, conversation(i)))))
                )
                arrivals[-1].start()
            deadline = time.monotonic() + 10
            while len(service._waiting) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
        steps_at[row] = service.steps
        return original(row, prompt, *table)

    steps_at: dict[int, int] = {}
    engine.prefill = prefill
    try:
        first = solo(model, tokenizer, conversation(0))
        for t in arrivals:
            t.join(60)
    finally:
        del engine.prefill
    assert len(steps_at) == 4 and len(set(steps_at.values())) == 1  # all four prefilled before any step
    expected = {i: solo(model, tokenizer, conversation(i)).raw_text for i in range(4)}
    assert first.raw_text == expected[0]
    assert {i: r.raw_text for i, r in seen} == {i: expected[i] for i in (1, 2, 3)}


@pytest.mark.parametrize("layout", ["rows", "blocks"])
def test_a_request_that_waited_for_a_row_says_how_long(tmp_path, tokenizer, layout):
    """One row: the second of two requests submitted together waits for the first to finish, and its result
    says so (`waited_seconds`, shown in the chat footer and the API's `rp_eval` field); the first did not wait."""
    from rp_eval.chat.generate import StopRules

    folder = save_tiny(tmp_path / "m", tokenizer, seed=7)
    model = AutoModelForCausalLM.from_pretrained(folder)
    service = GenerationService(model, rows=1, columns=256, kv_layout=layout)
    try:
        settings = GenerationSettings(temperature=0, max_new_tokens=160, engine="static", trim_to_sentence=False)
        ids = tokenizer("こんにちは、今日は", add_special_tokens=False)["input_ids"]
        no_stops = StopRules(frozenset(), ())
        first = service.submit(tokenizer, ["a"], [ids], settings, no_stops)
        second = service.submit(tokenizer, ["b"], [ids], settings, no_stops)
        a, b = first.wait()[0], second.wait()[0]
    finally:
        service.close()
    assert a.new_tokens == b.new_tokens == 160 and a.text == b.text
    assert a.waited_seconds < a.first_token_seconds
    # the second began its prefill only once the first had its last token
    assert b.waited_seconds >= a.seconds - (second.submitted - first.submitted) - 1e-3, (a, b)
    assert b.waited_seconds > a.waited_seconds


def _start(request) -> float:
    """When the request's (first) prompt began its prefill, on the perf_counter clock."""
    return request.submitted + request.rows[0].placed


@pytest.mark.parametrize("layout", ["rows", "blocks"])
def test_a_page_request_takes_the_next_free_row_before_api_requests_that_came_earlier(tmp_path, tokenizer, layout):
    """One row, taken by an API request: a second API request waits, then a page request (a rater's blind pair
    side) arrives; when the row frees, the page's request is prefilled first. The API request still runs."""
    from rp_eval.chat.generate import API, PAGE, StopRules

    folder = save_tiny(tmp_path / "m", tokenizer, seed=7)
    model = AutoModelForCausalLM.from_pretrained(folder)
    service = GenerationService(model, rows=1, columns=256, kv_layout=layout)
    try:
        settings = GenerationSettings(temperature=0, max_new_tokens=60, engine="static", trim_to_sentence=False)
        ids = tokenizer("こんにちは、今日は", add_special_tokens=False)["input_ids"]
        no_stops = StopRules(frozenset(), ())
        first = service.submit(tokenizer, ["a"], [ids], settings, no_stops, priority=API)
        while first.rows[0].slot == -1:  # the API request holds the row
            time.sleep(0.001)
        earlier = service.submit(tokenizer, ["b"], [ids], settings, no_stops, priority=API)
        page = service.submit(tokenizer, ["c"], [ids], settings, no_stops, priority=PAGE)
        results = [r.wait()[0] for r in (first, earlier, page)]
    finally:
        service.close()
    assert [r.new_tokens for r in results] == [60, 60, 60]
    assert page.submitted > earlier.submitted
    assert _start(page) < _start(earlier), (page.rows[0].placed, earlier.rows[0].placed)
