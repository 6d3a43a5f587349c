"""The KV block pool (rp_eval/chat/blocks.py): allocation, sharing, waiting and pausing under random schedules.

A simulated cache memory stands in for the engine's keys and values: every token a request writes goes to
`memory[block][slot]` through its block table, and after every operation each running request's tokens are
read back through its table. A block written while another request holds it, a shared block with the wrong
contents or a table pointing at someone else's block shows up there as a wrong token. A toy greedy "model"
(the next token a hash of the whole history) makes every finished reply comparable with its solo reply.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rp_eval.chat.blocks import Admission, BlockPool, TooLong, blocks_for, plan_blocks


def next_token(history: list[int]) -> int:
    return hashlib.blake2b(repr(history).encode(), digest_size=2).digest()[0] % 7


def solo(prompt: list[int], new: int) -> list[int]:
    made = []
    for _ in range(new):
        made.append(next_token(prompt + made))
    return made


class Simulation:
    def __init__(self, blocks: int, block_tokens: int, share: bool = True) -> None:
        self.pool = BlockPool(blocks, block_tokens, share=share)
        self.admission = Admission(self.pool)
        self.memory = {b: [None] * block_tokens for b in range(blocks)}
        self.prompts, self.made, self.new = {}, {}, {}
        self.finished, self.cancelled = set(), set()
        self.prefilled = 0  # tokens written by admissions (what a prefill would compute)

    def _write(self, key, start: int) -> None:
        tokens, table, size = self.prompts[key] + self.made[key], self.pool.table(key), self.pool.block_tokens
        for p in range(start, self.pool.tokens(key)):
            block = table[p // size]
            assert self.pool._refs[block] == 1, "a write into a block another request holds"
            self.memory[block][p % size] = tokens[p]
        self.pool.written(key)

    def submit(self, key, prompt: list[int], new: int) -> None:
        self.admission.submit(key, prompt, new)
        self.prompts[key], self.made[key], self.new[key] = list(prompt), [], new

    def schedule(self) -> None:
        for key in self.admission.schedule():
            cached = self.admission.cached[key]
            self.prefilled += self.pool.tokens(key) - cached
            self._write(key, cached)

    def step(self) -> None:
        self.schedule()
        for key in list(self.admission.running):
            if key not in self.admission.running:  # paused by an earlier row of this step
                continue
            token = next_token(self.prompts[key] + self.made[key])
            self.made[key].append(token)
            before = self.pool.tokens(key)
            paused = self.admission.grow(key, token)
            if key not in paused and self.pool.holds(key):
                self._write(key, before)
            if len(self.made[key]) == self.new[key]:
                assert not self.pool.holds(key) and key not in self.admission.waiting
                self.finished.add(key)

    def cancel(self, key) -> None:
        self.admission.cancel(key)
        self.cancelled.add(key)

    def check(self) -> None:
        self.pool.check()
        size = self.pool.block_tokens
        for key in self.admission.running:
            table, expected = self.pool.table(key), self.prompts[key] + self.made[key]
            assert self.pool.tokens(key) == len(expected)
            got = [self.memory[table[p // size]][p % size] for p in range(len(expected))]
            assert got == expected, f"request {key} reads other tokens than it wrote"
        assert len(self.admission.running) + len(self.admission.waiting) == len(
            set(self.prompts) - self.finished - self.cancelled
        )


PREFIXES = [[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 9, 9], [5, 5, 5]]

arrival = st.tuples(
    st.just("arrive"), st.sampled_from(range(len(PREFIXES))), st.lists(st.integers(0, 6), max_size=12),
    st.integers(1, 10),
)  # fmt: skip
schedule = st.lists(
    st.one_of(arrival, st.tuples(st.just("step")), st.tuples(st.just("cancel"), st.integers(0, 40))), max_size=60
)


@settings(max_examples=150, deadline=None)
@given(schedule, st.integers(6, 24), st.integers(1, 4), st.booleans())
def test_random_arrival_cancel_pause_schedules(ops, blocks, block_tokens, share):
    sim = Simulation(blocks, block_tokens, share)
    n = 0
    for op in ops:
        if op[0] == "arrive":
            prompt, new = PREFIXES[op[1]] + op[2], op[3]
            if blocks_for(len(prompt) + new, block_tokens) > blocks:
                with pytest.raises(TooLong, match="KV pool holds"):
                    sim.admission.submit(n, prompt, new)
            else:
                sim.submit(n, prompt, new)
            n += 1
        elif op[0] == "step":
            sim.step()
        elif op[1] in sim.prompts and op[1] not in sim.finished | sim.cancelled:
            sim.cancel(op[1])
        sim.check()
    for _ in range(2000):  # everything left runs to its end: waiting requests are served, never dropped
        if not sim.admission.running and not sim.admission.waiting:
            break
        sim.step()
        sim.check()
    assert not sim.admission.running and not sim.admission.waiting
    for key in sim.finished:
        assert sim.made[key] == solo(sim.prompts[key], sim.new[key]), f"request {key} differs from its solo reply"
    assert sim.finished | sim.cancelled == set(sim.prompts)
    assert sim.pool.available == sim.pool.blocks and not sim.pool._tables  # no block leaks


def test_a_pool_too_small_for_all_requests_makes_them_wait_then_finish():
    sim = Simulation(blocks=8, block_tokens=4)  # 32 tokens; each request takes 12 + 8 = 20
    for key in range(4):
        sim.submit(key, [key] * 12, 8)
    sim.schedule()
    assert sim.admission.running == [0, 1] and list(sim.admission.waiting) == [2, 3]
    for _ in range(100):
        if not sim.admission.running and not sim.admission.waiting:
            break
        sim.step()
        sim.check()
    assert sim.finished == {0, 1, 2, 3}
    for key in range(4):
        assert sim.made[key] == solo([key] * 12, 8)
    assert sim.pool.available == 8


def test_the_newest_request_is_paused_and_resumed_from_the_cache():
    sim = Simulation(blocks=6, block_tokens=4)
    sim.submit("old", [1] * 8, 12)
    sim.submit("new", [2] * 8, 12)
    paused = []
    for _ in range(60):
        if not sim.admission.running and not sim.admission.waiting:
            break
        before = set(sim.admission.running)
        sim.step()
        paused += [k for k in before if k in sim.admission.waiting]
        sim.check()
    assert paused and set(paused) == {"new"}  # never the older request
    assert sim.made["old"] == solo([1] * 8, 12) and sim.made["new"] == solo([2] * 8, 12)
    assert sim.pool.available == 6


def test_two_chats_with_one_system_prompt_hold_it_once_and_keep_their_own_turns():
    pool = BlockPool(blocks=16, block_tokens=4)
    system = list(range(100, 112))  # three full blocks
    assert pool.admit("a", system + [1, 2, 3], extra=4) == 0
    assert pool.admit("too soon", system + [7, 8]) == 0  # a's keys are not computed yet: nothing to share
    pool.release("too soon")
    pool.written("a")
    assert pool.admit("b", system + [7, 8], extra=4) == 12  # the system prompt found in the cache
    a, b = pool.table("a"), pool.table("b")
    assert a[:3] == b[:3] and not set(a[3:]) & set(b[3:])
    assert pool.available == 16 - len(a) - len(b) + 3
    pool.release("a")
    assert pool.table("b")[:3] == b[:3]  # still held by b
    pool.release("b")
    pool.check()
    assert pool.available == 16


def test_the_next_turn_of_a_conversation_reuses_its_cached_history():
    pool = BlockPool(blocks=32, block_tokens=4)
    turn1 = list(range(40))
    assert pool.admit("turn1", turn1, extra=1) == 0
    pool.append("turn1", [41, 42, 43, 44, 45])  # the reply
    pool.written("turn1")
    pool.release("turn1")  # the reply ended; its blocks stay cached
    turn2 = turn1 + [41, 42, 43, 44, 45] + [50, 51, 52]
    cached = pool.admit("turn2", turn2, extra=1)
    assert cached == 44  # the 11 full blocks of turn 1 and its reply: only 4 tokens to prefill
    pool.release("turn2")
    pool.check()
    assert pool.available == 32


def test_cached_blocks_give_way_oldest_first_when_fresh_ones_run_out():
    pool = BlockPool(blocks=4, block_tokens=2)
    pool.admit("x", [1, 2, 3, 4, 5], extra=0)  # 3 blocks, two of them full and hashed
    pool.written("x")
    pool.release("x")
    assert pool.available == 4
    pool.admit("y", [9, 9, 9, 9, 9, 9, 9, 9], extra=0)  # needs all 4: the cached ones are reused
    pool.release("y")
    assert pool.admit("x again", [1, 2, 3, 4, 5]) == 0  # its history was overwritten, so nothing is found
    pool.release("x again")
    pool.check()


def test_a_whole_prompt_in_the_cache_still_prefills_its_last_token():
    pool = BlockPool(blocks=8, block_tokens=4)
    pool.admit("a", list(range(8)))
    pool.written("a")
    pool.release("a")
    assert pool.admit("b", list(range(8))) == 4  # not 8: the last token's logits must be computed


def test_bad_sizes_are_refused_with_the_numbers():
    with pytest.raises(ValueError, match="at least one block"):
        BlockPool(0)
    admission = Admission(BlockPool(blocks=4, block_tokens=16))
    with pytest.raises(
        TooLong, match=r"a prompt of 60 tokens and 10 new ones need 5 blocks of 16; the KV pool holds 4"
    ):
        admission.submit("long", list(range(60)), 10)
    with pytest.raises(ValueError, match="new_tokens must be at least 1"):
        admission.submit("none", [1], 0)
    assert not admission.waiting and admission.pool.available == 4


def test_the_plan_for_a_7b_llama2_on_a_24_gb_card():
    per_token = 2 * 32 * 32 * 128 * 2  # layers, KV heads, head dim, bf16: 0.52 MB a token
    plan = plan_blocks(per_token, 9 * 10**9)
    assert (plan.block_tokens, plan.blocks, plan.tokens) == (16, 1072, 17152)
    assert plan.chats() == 22  # 768 tokens = 48 blocks each
    assert plan.describe() == (
        "KV cache: 1,072 blocks of 16 tokens = 17,152 tokens (9.0 GB at 0.52 MB a token); "
        "22 chats of 512 + 256 tokens at once"
    )
    with pytest.raises(ValueError, match="must be positive"):
        plan_blocks(0, 10**9)


def test_a_page_request_goes_before_waiting_api_requests_and_api_ones_are_paused_first():
    """Priorities (0 the page, 1 the API): a page request submitted last is admitted first; when the pool runs
    short the newest API request is paused, not the newer page one; a paused API request goes back behind the
    waiting page requests, before the other API ones."""
    pool = BlockPool(blocks=6, block_tokens=4)
    admission = Admission(pool)
    admission.submit("api-1", [1] * 8, 12, priority=1)
    admission.submit("api-2", [2] * 8, 12, priority=1)
    admission.submit("page", [3] * 8, 12, priority=0)
    assert list(admission.waiting) == ["page", "api-1", "api-2"]
    assert admission.schedule(most=1) == ["page"]
    assert admission.schedule(most=1) == ["api-1"]
    for key in ("page", "api-1"):
        pool.written(key)
    admission.submit("page-2", [4] * 8, 4, priority=0)
    assert list(admission.waiting) == ["page-2", "api-2"]
    paused = []
    for token in range(8):  # both running grow until the six blocks are short
        for key in ("page", "api-1"):
            if key in admission.running:
                paused += admission.grow(key, token)
    assert paused and set(paused) == {"api-1"}
    assert list(admission.waiting) == ["page-2", "api-1", "api-2"]
