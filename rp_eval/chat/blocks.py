"""KV memory in blocks from one pool (paged KV, as vLLM's PagedAttention), the bookkeeping half.

A request's keys and values live in fixed-size blocks of BLOCK_TOKENS tokens taken from one pool; its block
table lists them in order (token p sits in block `table[p // BLOCK_TOKENS]`, slot `p % BLOCK_TOKENS`). Full
blocks are named by a hash of every token up to their end (the chain of vLLM's automatic prefix caching), so
two requests with the same beginning (persona, system prompt, an earlier turn of the same conversation) hold
one copy of those blocks, reference-counted. A block nobody holds any more keeps its hash and its contents and
waits in a least-recently-used list: the next turn of the conversation finds it there, and a request that needs
fresh blocks takes the oldest of them only when the never-used ones are gone.

`Admission` is the policy on top: requests wait in arrival order until their prompt (and one step) fits, a
request that could never fit is refused at once with the pool's size in the message, and when the pool runs
short mid-reply the newest running request is paused. A paused request gives its blocks back and is
recomputed when it resumes (its tokens so far become its prompt): its full blocks stay hashed in the
least-recently-used list, so unless others needed that memory meanwhile the resume finds them again and
prefills only the tail; keeping them pinned instead would hold memory exactly when the pool is shortest.

Hand-written: this is a few hundred lines of bookkeeping over the project's own engine layout; vLLM's block
manager is tied to vLLM's scheduler and engine and can not be used on its own.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field

BLOCK_TOKENS = 16  # vLLM's default block size: small enough that a reply wastes under 16 tokens of memory


def blocks_for(tokens: int, block_tokens: int = BLOCK_TOKENS) -> int:
    return -(-tokens // block_tokens)


@dataclass(frozen=True)
class BlockPlan:
    """What a KV budget buys: `blocks` blocks of `block_tokens` tokens at `bytes_per_token` bytes a token."""

    block_tokens: int
    blocks: int
    bytes_per_token: int

    @property
    def tokens(self) -> int:
        return self.blocks * self.block_tokens

    @property
    def gigabytes(self) -> float:
        return self.tokens * self.bytes_per_token / 1e9

    def chats(self, prompt: int = 512, new: int = 256) -> int:
        """How many chats of `prompt` + `new` tokens run at once (no prefix shared between them)."""
        return self.blocks // blocks_for(prompt + new, self.block_tokens)

    def describe(self) -> str:
        return (
            f"KV cache: {self.blocks:,} blocks of {self.block_tokens} tokens = {self.tokens:,} tokens "
            f"({self.gigabytes:.1f} GB at {self.bytes_per_token / 1e6:.2f} MB a token); "
            f"{self.chats():,} chats of 512 + 256 tokens at once"
        )


def plan_blocks(bytes_per_token: int, budget_bytes: int, block_tokens: int = BLOCK_TOKENS) -> BlockPlan:
    """The pool that fits `budget_bytes` (at least one block, so the message of a too-long request can say so)."""
    if bytes_per_token <= 0 or block_tokens <= 0:
        raise ValueError(f"bytes_per_token ({bytes_per_token}) and block_tokens ({block_tokens}) must be positive")
    return BlockPlan(block_tokens, max(1, budget_bytes // (bytes_per_token * block_tokens)), bytes_per_token)


def _chain(tokens: list[int], block_tokens: int) -> list[bytes]:
    """The hash of each full block of `tokens`: each one covers every token up to that block's end."""
    hashes, running = [], hashlib.blake2b(digest_size=16)
    for end in range(block_tokens, len(tokens) + 1, block_tokens):
        running.update(b"".join(t.to_bytes(4, "little", signed=True) for t in tokens[end - block_tokens : end]))
        hashes.append(running.copy().digest())
    return hashes


@dataclass
class _Table:
    blocks: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # every token written through this table so far
    hashed: int = 0  # leading blocks whose hash is known (full and registered, or taken shared)


class TooLong(ValueError):
    """A request that needs more blocks than the whole pool holds: refused before any work."""


class BlockPool:
    """`blocks` blocks of `block_tokens` tokens. Keys name requests (anything hashable). One thread calls it (the
    generation service's loop); nothing here is locked."""

    def __init__(self, blocks: int, block_tokens: int = BLOCK_TOKENS, share: bool = True) -> None:
        if blocks < 1 or block_tokens < 1:
            raise ValueError(f"a pool needs at least one block of one token (got {blocks} × {block_tokens})")
        self.blocks, self.block_tokens, self.share = blocks, block_tokens, share
        self._fresh: deque[int] = deque(range(blocks))  # never used, or used and given back unhashed
        self._idle: OrderedDict[int, None] = OrderedDict()  # hashed, held by nobody, oldest first
        self._refs = [0] * blocks
        self._hash_of: dict[int, bytes] = {}
        self._by_hash: dict[bytes, int] = {}
        self._tables: dict[object, _Table] = {}

    # -- reading ----------------------------------------------------------------------------------------------
    @property
    def available(self) -> int:
        """Blocks a request could take now (never used, or only cached)."""
        return len(self._fresh) + len(self._idle)

    def table(self, key) -> list[int]:
        return list(self._tables[key].blocks)

    def tokens(self, key) -> int:
        return len(self._tables[key].tokens)

    def recorded(self, key) -> list[int]:
        """Every token recorded under `key` (its prompt, then what it made): what a prefill of it computes."""
        return list(self._tables[key].tokens)

    def holds(self, key) -> bool:
        return key in self._tables

    def _hits(self, tokens: list[int]) -> list[int]:
        """Cached blocks that begin `tokens`; never all of it (the last token is prefilled again for its logits)."""
        if not self.share:
            return []
        hits = []
        for h in _chain(tokens[: len(tokens) - 1], self.block_tokens):
            block = self._by_hash.get(h)
            if block is None:
                break
            hits.append(block)
        return hits

    def cost(self, tokens: list[int], extra: int = 0) -> tuple[int, int]:
        """(blocks it would take from `available`, tokens already cached) for a request of `tokens` with room
        for `extra` more."""
        hits = self._hits(tokens)
        fresh = blocks_for(len(tokens) + extra, self.block_tokens) - len(hits)
        return fresh + sum(1 for b in hits if b in self._idle), len(hits) * self.block_tokens

    # -- changing ---------------------------------------------------------------------------------------------
    def _take(self) -> int:
        if self._fresh:
            block = self._fresh.popleft()
        else:  # the least recently used cached block loses its hash
            block, _ = self._idle.popitem(last=False)
            del self._by_hash[self._hash_of.pop(block)]
        self._refs[block] = 1
        return block

    def written(self, key, count: int | None = None) -> None:
        """The keys and values of `key`'s first `count` tokens (default: all it recorded) are in the cache now:
        its full blocks among them become findable by later requests. Never before: a request admitted in the
        same round must not skip a prefill whose keys nobody has computed yet."""
        table = self._tables[key]
        count = len(table.tokens) if count is None else min(count, len(table.tokens))
        full = count // self.block_tokens
        if table.hashed >= full or not self.share:
            return
        hashes = _chain(table.tokens[: full * self.block_tokens], self.block_tokens)
        for i in range(table.hashed, full):
            block = table.blocks[i]
            if hashes[i] not in self._by_hash and block not in self._hash_of:
                self._by_hash[hashes[i]] = block
                self._hash_of[block] = hashes[i]
        table.hashed = full

    def admit(self, key, tokens: list[int], extra: int = 0) -> int | None:
        """Blocks for `tokens` plus `extra` more under `key`, sharing cached leading blocks; returns how many
        leading tokens are already in the cache (the prefill may skip them), or None when the pool is short
        (then nothing changed). Its own full blocks are found by others once `written` says so."""
        if key in self._tables:
            raise KeyError(f"{key!r} already holds blocks")
        need = blocks_for(len(tokens) + extra, self.block_tokens)
        if need > self.blocks:
            raise TooLong(
                f"{len(tokens) + extra:,} tokens need {need:,} blocks of {self.block_tokens}; "
                f"the KV pool holds {self.blocks:,} blocks ({self.blocks * self.block_tokens:,} tokens)"
            )
        taken, cached = self.cost(tokens, extra)
        if taken > self.available:
            return None
        table = _Table()
        for block in self._hits(tokens):
            self._refs[block] += 1
            self._idle.pop(block, None)
            table.blocks.append(block)
        table.hashed = len(table.blocks)
        table.blocks += [self._take() for _ in range(need - len(table.blocks))]
        table.tokens = list(tokens)
        self._tables[key] = table
        return cached

    def append(self, key, tokens: list[int], extra: int = 0) -> bool:
        """Record `tokens` written after what `key` holds, with room for `extra` more; False (nothing changed)
        when the pool lacks the blocks."""
        table = self._tables[key]
        need = blocks_for(len(table.tokens) + len(tokens) + extra, self.block_tokens) - len(table.blocks)
        if need > self.available:
            return False
        table.blocks += [self._take() for _ in range(max(0, need))]
        table.tokens += tokens
        return True

    def release(self, key) -> None:
        """Give back every block `key` holds; hashed ones stay cached until their memory is needed."""
        table = self._tables.pop(key)
        for block in reversed(table.blocks):  # the tail first: the beginning, most shared, stays longest
            self._refs[block] -= 1
            if self._refs[block]:
                continue
            if block in self._hash_of:
                self._idle[block] = None
            else:
                self._fresh.append(block)

    def check(self) -> None:
        """Every invariant of the pool (for tests): references equal the tables holding a block, each block is
        in exactly one place, hashes map both ways."""
        refs = [0] * self.blocks
        for table in self._tables.values():
            for block in table.blocks:
                refs[block] += 1
            assert len(table.blocks) * self.block_tokens >= len(table.tokens)
        assert refs == self._refs, "reference counts differ from the tables"
        held = {b for b in range(self.blocks) if refs[b]}
        assert not held & set(self._fresh) and not held & set(self._idle), "a held block is also free"
        assert len(held) + len(self._fresh) + len(self._idle) == self.blocks, "a block is lost or counted twice"
        assert all(b in self._hash_of for b in self._idle), "an idle block has no hash"
        assert {b: h for h, b in self._by_hash.items()} == self._hash_of


class Admission:
    """Which requests run: by priority (a smaller number first: the page before the API), then arrival order,
    waiting while the pool is short; the newest of the lowest priority paused when a running request can not
    grow. `submit` refuses (TooLong) a request whose prompt and reply could never fit."""

    def __init__(self, pool: BlockPool) -> None:
        self.pool = pool
        self.waiting: deque[object] = deque()  # keys, the front admitted first
        self.running: list[object] = []  # in order of admission: the last is the newest
        self.cached: dict[object, int] = {}  # tokens the latest admission of each request found in the cache
        self._tokens: dict[object, list[int]] = {}  # a waiting request's tokens so far (prompt, then its reply)
        self._left: dict[object, int] = {}  # tokens each request has still to make
        self.priority: dict[object, int] = {}  # each request's priority (smaller first)

    def _enter(self, key, front: bool) -> None:
        """Into the waiting queue after every key of a higher priority (a smaller number) and, unless `front`
        (a paused request: it goes back before its equals), after its equals too."""
        mine = self.priority[key]
        at = len(self.waiting)
        for n, other in enumerate(self.waiting):
            theirs = self.priority.get(other, 1)
            if theirs > mine or (front and theirs == mine):
                at = n
                break
        self.waiting.insert(at, key)

    def submit(self, key, prompt: list[int], new_tokens: int, priority: int = 1) -> None:
        if new_tokens < 1:
            raise ValueError(f"new_tokens must be at least 1 (got {new_tokens})")
        need = blocks_for(len(prompt) + new_tokens, self.pool.block_tokens)
        if need > self.pool.blocks:
            raise TooLong(
                f"a prompt of {len(prompt):,} tokens and {new_tokens:,} new ones need {need:,} blocks of "
                f"{self.pool.block_tokens}; the KV pool holds {self.pool.blocks:,} blocks "
                f"({self.pool.blocks * self.pool.block_tokens:,} tokens)"
            )
        self.priority[key] = priority
        self._enter(key, front=False)
        self._tokens[key], self._left[key] = list(prompt), new_tokens

    def schedule(self, most: int | None = None) -> list[object]:
        """Admit waiting requests from the front while they fit (each with room for its next token), at most
        `most` of them (the engine's free rows); returns the keys admitted now. The front one is never
        overtaken by one of its own priority, so a long request is not starved by shorter ones after it."""
        admitted = []
        while self.waiting and (most is None or len(admitted) < most):
            key = self.waiting[0]
            cached = self.pool.admit(key, self._tokens[key], extra=1)
            if cached is None:
                break
            self.waiting.popleft()
            del self._tokens[key]
            self.cached[key] = cached
            self.running.append(key)
            admitted.append(key)
        return admitted

    def grow(self, key, token: int, pending: dict | None = None) -> list[object]:
        """Record `key`'s new token (with room for the one after it); its last token finishes it. Pauses the newest
        running requests until that fits and returns the keys paused (`key` itself among them when it is the
        newest). A request alone in the pool always fits: `submit` checked its whole length. `pending`: tokens
        of other running requests made in the same step but not recorded yet; a request paused here keeps its
        own (taken out of `pending`), so it resumes after it instead of making it again."""
        if self._left[key] <= 1:  # its last token: nothing reads its keys and values
            self.finish(key)
            return []
        paused = []
        while not self.pool.append(key, [token], extra=1):
            lowest = max(self.priority.get(k, 1) for k in self.running)
            victim = next(k for k in reversed(self.running) if self.priority.get(k, 1) == lowest)
            paused.append(victim)
            if victim == key:
                self._left[key] -= 1
                self.pause(key, [token])
                return paused
            self.pause(victim, [pending.pop(victim)] if pending and victim in pending else [])
        self._left[key] -= 1
        return paused

    def pause(self, key, pending: list[int] = ()) -> None:
        """Back to the front of the queue with its tokens so far (and `pending`, made but not yet stored); its
        blocks given back, recomputed at resume."""
        tokens = list(self.pool._tables[key].tokens) + list(pending)
        self.running.remove(key)
        self.pool.release(key)
        self._enter(key, front=True)
        self._tokens[key] = tokens

    def finish(self, key) -> None:
        self.running.remove(key)
        self.pool.release(key)
        self._left.pop(key, None)
        self.cached.pop(key, None)
        self.priority.pop(key, None)

    def cancel(self, key) -> None:
        """Wherever the request is: waiting, paused or running. Its blocks go back."""
        if key in self.running:
            self.finish(key)
            return
        if key in self.waiting:
            self.waiting.remove(key)
        self._tokens.pop(key, None)
        self._left.pop(key, None)
        self.cached.pop(key, None)
        self.priority.pop(key, None)


def explain(config, element_size: int, budget_bytes: int) -> str:
    """What the KV cache of a model with this `config` (transformers' config, `element_size` bytes a value)
    would be under `budget_bytes`: the rows layout's plan (rows × the whole context each, as
    rp_eval.chat.engine.plan chooses) and the block pool the same bytes give (the blocks layout)."""
    import torch

    from rp_eval.chat.engine import kv_bytes_per_token, plan

    dtype = {1: torch.int8, 2: torch.bfloat16, 4: torch.float32}[element_size]
    shape = type("Shape", (), {"config": config, "parameters": lambda self: iter([torch.empty(0, dtype=dtype)])})()
    rows, columns = plan(shape, budget_bytes=budget_bytes)
    per_token = kv_bytes_per_token(shape)
    pool = plan_blocks(per_token, budget_bytes)
    return (
        f"budget {budget_bytes / 1e9:.1f} GB; as rows: {rows} rows × {columns:,} columns "
        f"({rows} chats at once, each reserving its whole context); in blocks: {pool.describe()}"
    )
