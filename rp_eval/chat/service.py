"""One generation service per loaded model: the only code that steps that model's engine.

A request (a chat turn, a rating pair's side, an API call, an evaluation or fitness batch) is submitted with
its prompt ids and settings and gets a `Request` back: its own rows (ids, text, stop state), sampler rows and
seed, and a queue of updates that the caller reads from its own thread. Nothing of a request lives on the
engine except the KV rows it was given. One scheduler thread per service runs every step under
`torch.inference_mode()` entered per step, so callers on other threads (the web server's pool, two streams of
a side-by-side chat interleaved by one generator) never touch the model or its grad mode.

Continuous batching on the static engine (rp_eval/chat/engine.py): a new request is prefilled into a free KV
row at the next step boundary and decodes with every other row in one step; a finished or cancelled row
leaves at once. With the engine's blocks layout a row holds only the blocks its request has written
(rp_eval/chat/blocks.py): a request is admitted when its prompt's blocks are free (it waits otherwise, in
arrival order; one that could never fit the pool is refused before any work), it reuses cached blocks of a
prefix it shares with an earlier request (a system prompt, its own conversation's earlier turns), and when
the pool runs short mid-reply the newest running request is paused and later resumed by recomputing from its
cached prefix (its sampler's random state kept, so a seeded reply is the same): rp_eval/chat/admitting.py. A
request that does not fit the static cache (longer than its columns, a model it does not support, `engine:
eager`) runs on its own eager engine, stepped in turn with the others by the same thread.

This is how gpt-fast keeps decode state out of shared objects and how FastChat caps concurrency per model
worker; written here rather than taken from vLLM or SGLang because those bring their own server, scheduler and
model code, while this service reuses the project's engine, stop rules and sentence trimming unchanged.
"""

from __future__ import annotations

import atexit
import itertools
import queue
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from rp_eval.chat.admitting import BlockAdmission
from rp_eval.chat.blocks import Admission, BlockPool
from rp_eval.chat.engine import EagerEngine, StaticEngine, _bucket_batch, supports_static
from rp_eval.chat.generate import (
    API,
    PAGE,
    GenerationError,
    GenerationResult,
    GenerationSettings,
    StopRules,
    _advance,
    _result,
    _Row,
)
from rp_eval.chat.sampling import Sampler

IDLE_SECONDS = 2.0  # the scheduler thread ends after this long without work (a new request starts it again)

# Who waits for whom: a request of the page (the Rate tab's blind pair or single reply, the Chat tab) is admitted
# before any API request waiting with it, and an API request before an evaluation's or a job's batch; within one
# priority, arrival order. Raters are people clicking (few requests, each short, capped per login), so the API is
# not starved by them; on the eager path (CPU) the API still gets API_TURNS of its runs stepped in every round
# while page runs go, so its streams keep moving.
API_TURNS = 1


@dataclass
class Request:
    """One submitted request: several prompts for a batch, one for a chat turn. Read it from any thread."""

    tokenizer: object
    prompts: list[str]
    encoded: list[list[int]]
    settings: GenerationSettings
    rules: StopRules
    streaming: bool = False
    rows: list[_Row] = field(default_factory=list)
    submitted: float = field(default_factory=time.perf_counter)
    updates: queue.Queue = field(default_factory=queue.Queue)
    cancelled: bool = False
    finished: bool = False
    results: list[GenerationResult] | None = None
    error: Exception | None = None
    seeds: list[int] = field(default_factory=list)
    priority: int = API  # PAGE, API or BATCH: lower is admitted first

    def __post_init__(self) -> None:
        self.rows = [_Row() for _ in self.prompts]
        base = self.settings.seed if self.settings.seed is not None else torch.seed() % 2**62
        self.seeds = [(base + i) % 2**63 for i in range(len(self.prompts))]

    def cancel(self) -> None:
        """Stop this request's rows at the next step (a closed page, a disconnected client); harmless when the
        request has already finished."""
        self.cancelled = True

    def texts(self):
        """Snapshots of each row's text after every step (streaming requests), until the request ends."""
        while True:
            item = self.updates.get()
            if item is None:
                break
            yield item
        if self.error is not None:
            raise self.error

    def wait(self) -> list[GenerationResult]:
        for _ in self.texts():
            pass
        assert self.results is not None
        return self.results


@dataclass
class _EagerRun:
    request: Request
    engine: EagerEngine
    sampler: Sampler
    step: int = 0
    seen_prefill: bool = False


class GenerationService(BlockAdmission):
    """The engine of one model and the scheduler that steps it for every request."""

    def __init__(
        self,
        model,
        rows: int | None = None,
        columns: int | None = None,
        fused: bool | None = None,
        kv_layout: str | None = None,
        blocks: int | None = None,
        prefill_chunk: int | None = None,
    ) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self._rows, self._columns, self._fused = rows, columns, fused
        self._layout, self._blocks, self._chunk = kv_layout, blocks, prefill_chunk
        self.admission: Admission | None = None  # the blocks layout's queue and pool
        self._keys: dict[tuple[int, int], tuple[Request, int]] = {}  # admission key -> (request, its row)
        self._random: dict[tuple[int, int], object] = {}  # a paused row's sampler random state
        self.paused = 0  # rows paused for blocks (for tests and logs)
        self._static: StaticEngine | None = None
        self._sampler: Sampler | None = None
        self._owners: list[tuple[Request, int] | None] = []
        self._eager: list[_EagerRun] = []
        self._turn = 0  # the next API eager run to step while page runs go (round robin)
        self._waiting: list[Request] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pending = None  # the step launched on the GPU whose tokens are not read yet
        self.closed = False
        self.steps = 0  # decode steps of the static engine (for tests and benchmarks)
        self.largest_batch = 0

    # -- the caller's side ---------------------------------------------------------------------------------
    def submit(
        self,
        tokenizer,
        prompts: list[str],
        encoded: list[list[int]],
        settings: GenerationSettings,
        rules: StopRules,
        streaming: bool = False,
        priority: int = API,
    ) -> Request:
        """Queue a request; `priority` PAGE (a rater's or chatter's page), API or BATCH: waiting requests are
        admitted by (priority, arrival)."""
        request = Request(tokenizer, prompts, encoded, settings, rules, streaming, priority=priority)
        with self._cond:
            if self.closed:
                raise GenerationError("this model is being unloaded: choose it again to load it anew")
            self._waiting.append(request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="rp_eval-generation", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return request

    def static_engine(self) -> StaticEngine | None:
        """The model's static engine (made on first use), or None where the model needs the eager one."""
        if self._static is None and supports_static(self.model):
            self._static = StaticEngine(
                self.model,
                rows=self._rows,
                columns=self._columns,
                fused=self._fused,
                kv_layout=self._layout,
                blocks=self._blocks,
                **({"prefill_chunk": self._chunk} if self._chunk else {}),
            )
            if self._static.layout == "blocks":
                self.admission = Admission(BlockPool(self._static.blocks, self._static.block_tokens))
            vocab = self.model.config.vocab_size
            self._sampler = Sampler(self._static.rows, vocab, self.device)
            self._owners = [None] * self._static.rows
        return self._static

    def warm_up(self) -> float:
        """Compile and capture the static engine's graphs now (at model load, before any request)."""
        engine = self.static_engine()
        return engine.warm_up() if engine is not None else 0.0

    def close(self, wait: float = 0.0) -> None:
        """Refuse new requests and end the waiting and running ones with a message (the model is unloaded);
        with `wait`, give the scheduler thread that many seconds to end."""
        with self._cond:
            self.closed = True
            thread = self._thread
            self._cond.notify_all()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    # -- the scheduler thread ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                idle_since = time.monotonic()
                while not (self._waiting or self._eager or any(self._owners) or self._pending or self._keys):
                    if self.closed:
                        break
                    self._cond.wait(0.2)
                    if time.monotonic() - idle_since > IDLE_SECONDS and not self._waiting:
                        self._thread = None
                        return
                if self.closed:
                    with torch.inference_mode():
                        self._fail_all(GenerationError("this model was unloaded while it was generating"))
                    self._thread = None
                    return
                waiting, self._waiting = _by_priority(self._waiting), []
            try:
                with torch.inference_mode():  # per step, in this thread only
                    self._once(waiting)
            except Exception as err:  # noqa: BLE001 - never leave a caller waiting on a dead thread
                with self._cond, torch.inference_mode():
                    self._waiting[:0] = [r for r in waiting if not r.finished and r not in self._waiting]
                    self._fail_all(GenerationError(f"generation failed: {err}"))

    def _once(self, waiting: list[Request]) -> None:
        left = self._admit(waiting)
        # requests that arrived during those prefills are prefilled too before the next step (while rows are
        # free): a burst of arrivals waits for the burst's prefills, not for a decode step between each
        while not left:
            with self._cond:
                arrived, self._waiting = self._waiting, []
            if not arrived:
                break
            waiting.extend(arrived)  # the loop's list: should this step fail, they are failed or put back too
            left = self._admit(_by_priority(arrived))
        with self._cond:
            self._waiting[:0] = left
        self._drop_cancelled()
        if any(self._owners) or self._pending is not None:
            self._static_step()
        for run in self._eager_turns():
            self._eager_step(run)

    def _eager_turns(self) -> list[_EagerRun]:
        """The eager runs to step this round: all of them, or while a page's run goes, the page's runs and
        API_TURNS of the others in turn (one eager step per run and round: forty API streams would otherwise
        make a rater's reply forty times slower)."""
        runs = list(self._eager)
        first = [run for run in runs if run.request.priority <= PAGE]
        rest = [run for run in runs if run.request.priority > PAGE]
        if not first or len(rest) <= API_TURNS:
            return runs
        start = self._turn % len(rest)
        self._turn = start + API_TURNS
        return first + (rest + rest)[start : start + API_TURNS]

    def _uses_static(self, request: Request) -> bool:
        choice = request.settings.engine
        if choice == "eager" or (choice == "auto" and self.device.type != "cuda"):
            return False
        engine = self.static_engine()
        if engine is None:
            return False
        widest = max(len(e) for e in request.encoded)
        return engine.fits(widest, request.settings.max_new_tokens)

    def _admit(self, waiting: list[Request]) -> list[Request]:
        """Prefill what fits now; returns the requests (or their remaining prompts) that must wait."""
        left = []
        for request in waiting:
            if request.cancelled:
                self._finish(request)
                continue
            try:
                if not self._uses_static(request):
                    self._start_eager(request)
                elif self.admission is not None:
                    self._queue(request, request.priority)
                elif not self._place(request):
                    left.append(request)
            except Exception as err:  # noqa: BLE001 - a request that can not run fails alone
                self._fail(request, err)
        if self.admission is not None:
            self._schedule()
        return left

    def _place(self, request: Request) -> bool:
        """Prefill the request's unplaced prompts into free rows; False when some must wait for rows."""
        engine, sampler = self._static, self._sampler
        pending = [i for i, row in enumerate(request.rows) if row.slot == -1]
        free = [r for r, owner in enumerate(self._owners) if owner is None]
        if not pending:
            return True
        if not free:
            return False
        started = time.perf_counter() - request.submitted  # what it waited for a row, before its prefill
        if len(pending) == 1 or len(request.rows) == 1:
            take = [(pending[0], free[0])]
            logits = engine.prefill(free[0], request.encoded[pending[0]])
        else:  # a batch: one prefill for the longest run of free rows
            first = free[0]
            run = list(itertools.takewhile(lambda p: p[0] == p[1], zip(free, itertools.count(first))))
            take = list(zip(pending, [r for r, _ in run], strict=False))
            logits = engine.prefill_rows(first, [request.encoded[i] for i, _ in take])
        rows = [r for _, r in take]
        for i, r in take:
            sampler.assign(r, request.settings, request.encoded[i], request.seeds[i], request.tokenizer)
            self._owners[r] = (request, i)
            request.rows[i].slot, request.rows[i].placed = r, started
        first_ids = sampler.sample(logits, rows, packed=True)
        engine.ids[rows, 0] = first_ids
        self._take(request, [(i, r) for i, r in take], first_ids.tolist(), packed=True)
        return len(take) == len(pending)

    def _static_step(self) -> None:
        """Launch one step for every row in use, then read the tokens of the step before it: on a GPU the
        text decoding and stop checks of step t run while step t+1 computes (a row that has just finished
        rides along one step, its token dropped)."""
        engine, sampler = self._static, self._sampler
        active = [r for r, owner in enumerate(self._owners) if owner is not None]
        previous, self._pending = self._pending, None
        try:
            if active:
                logits = engine.step(_bucket_batch(active[-1] + 1))
                chosen = sampler.sample(logits, active)
                engine.ids[:, 0] = chosen
                snapshot = [(r, *self._owners[r]) for r in active]
                if self.device.type == "cuda" and engine.layout == "rows":  # blocks: tables change per token
                    host = torch.empty(len(chosen), dtype=torch.long, pin_memory=True)
                    host.copy_(chosen, non_blocking=True)
                    copied = torch.cuda.Event()
                    copied.record()
                    self._pending = (copied, host, snapshot)
                else:
                    previous, self._pending = None, None
                    self._read((None, chosen, snapshot))
                self.steps += 1
                self.largest_batch = max(self.largest_batch, len(active))
            if previous is not None:
                self._read(previous)
        except Exception as err:  # noqa: BLE001 - the engine's state is unknown: every row fails and is freed
            self._pending = None
            for request in {owner[0] for owner in self._owners if owner is not None}:
                self._fail(request, err)

    def _read(self, launched) -> None:
        copied, chosen, snapshot = launched
        if copied is not None:
            copied.synchronize()
        tokens = chosen.tolist()
        by_request: dict[int, tuple[Request, list]] = {}
        for r, request, i in snapshot:
            if self._owners[r] is not None and self._owners[r][0] is request:  # still this row's owner
                by_request.setdefault(id(request), (request, []))[1].append((i, r))
        made = [] if self.admission is not None else None
        for request, pairs in by_request.values():
            self._take(request, pairs, tokens, made=made)
        if made:
            self._grow_all(sorted(made, key=lambda m: self.admission.running.index((id(m[0]), m[1]))))

    def _take(
        self, request: Request, pairs: list[tuple[int, int]], tokens: list[int], packed: bool = False, made=None
    ) -> None:
        """The new token of each (row of the request, engine row): stop rules, release, updates. With the
        blocks layout, rows that go on are recorded in the pool at once, or, for a step's tokens, collected in
        `made` and recorded together once every row's token is taken (`_grow_all`)."""
        now = time.perf_counter() - request.submitted
        for n, (i, r) in enumerate(pairs):
            row = request.rows[i]
            if row.done or row.slot != r:  # done, or paused (for blocks) since this step was launched
                continue
            if not row.ids:
                row.first_token = now
            row.ids.append(tokens[n] if packed else tokens[r])
            _advance(row, row.ids[-1], request.tokenizer, request.rules, request.settings, len(row.ids) - 1)
            if row.done:
                row.finished = now
                self._release(r)
            elif made is not None:
                made.append((request, i, r, row.ids[-1]))
            elif self.admission is not None:
                self._grow(request, i, r, row.ids[-1])
        self._report(request)

    def _release(self, r: int) -> None:
        if self._owners and self._owners[r] is not None:
            request, i = self._owners[r]
            request.rows[i].slot = -2  # placed once, now gone
            self._owners[r] = None
            self._static.release(r)
            if self._keys.pop((id(request), i), None) is not None:
                self.admission.cancel((id(request), i))

    def _report(self, request: Request) -> None:
        if all(row.done for row in request.rows):
            self._finish(request)
        elif request.streaming:
            request.updates.put([row.text for row in request.rows])

    def _finish(self, request: Request) -> None:
        if request.finished:
            return
        request.finished = True
        for r, owner in enumerate(self._owners):
            if owner is not None and owner[0] is request:
                self._release(r)
        if self.admission is not None:
            self._forget(request)
        if not request.cancelled:
            request.results = [
                _result(row, request.tokenizer, request.settings, prompt, len(ids))
                for row, prompt, ids in zip(request.rows, request.prompts, request.encoded, strict=True)
            ]
        else:
            request.error = GenerationError("the request was cancelled")
        request.updates.put(None)

    def _fail(self, request: Request, err: Exception) -> None:
        if request.finished:
            return
        for r, owner in enumerate(self._owners):
            if owner is not None and owner[0] is request:
                self._release(r)
        if self.admission is not None:
            self._forget(request)
        self._eager = [run for run in self._eager if run.request is not request]
        request.finished = True
        request.error = err if isinstance(err, GenerationError) else GenerationError(f"generation failed: {err}")
        request.updates.put(None)

    def _fail_all(self, err: Exception) -> None:
        requests = [*self._waiting, *(run.request for run in self._eager)]
        requests += [owner[0] for owner in self._owners if owner is not None]
        requests += [request for request, _ in self._keys.values()]  # waiting for blocks, or paused
        self._waiting = []
        for request in requests:
            self._fail(request, err)

    def _drop_cancelled(self) -> None:
        for owner in list(self._owners):
            if owner is not None and owner[0].cancelled:
                self._finish(owner[0])
        for request, _ in list(self._keys.values()):  # waiting for blocks or paused: no row to notice it by
            if request.cancelled:
                self._finish(request)
        for run in list(self._eager):
            if run.request.cancelled:
                self._eager.remove(run)
                self._finish(run.request)

    # -- requests on their own eager engine ------------------------------------------------------------------
    def _start_eager(self, request: Request) -> None:
        n = len(request.encoded)
        sampler = Sampler(n, self.model.config.vocab_size, self.device)
        for i, ids in enumerate(request.encoded):
            sampler.assign(i, request.settings, ids, request.seeds[i], request.tokenizer)
        self._eager.append(_EagerRun(request, EagerEngine(self.model), sampler))

    def _eager_step(self, run: _EagerRun) -> None:
        request = run.request
        try:
            rows = list(range(len(request.rows)))
            if not run.seen_prefill:
                started = time.perf_counter() - request.submitted
                for row in request.rows:
                    row.placed = started
                pad = request.tokenizer.pad_token_id
                pad = pad if pad is not None else next(iter(request.rules.end_ids), 0)
                width = max(len(e) for e in request.encoded)
                ids = torch.tensor([[pad] * (width - len(e)) + e for e in request.encoded], device=self.device)
                mask = torch.tensor(
                    [[0] * (width - len(e)) + [1] * len(e) for e in request.encoded], device=self.device
                )
                logits = run.engine.prefill(ids, mask, request.settings.max_new_tokens)
                run.seen_prefill = True
            else:
                fed = torch.tensor([row.ids[-1] for row in request.rows], device=self.device)
                logits = run.engine.step(fed)
            tokens = run.sampler.sample(logits, rows).tolist()
        except Exception as err:  # noqa: BLE001
            self._fail(request, err)
            return
        self._take_eager(run, tokens)

    def _take_eager(self, run: _EagerRun, tokens: list[int]) -> None:
        request = run.request
        now = time.perf_counter() - request.submitted
        for i, row in enumerate(request.rows):
            if row.done:
                continue
            if not row.ids:
                row.first_token = now
            row.ids.append(tokens[i])
            _advance(row, tokens[i], request.tokenizer, request.rules, request.settings, len(row.ids) - 1)
            if row.done:
                row.finished = now
        if all(row.done for row in request.rows):
            self._eager.remove(run)
        self._report(request)


def _by_priority(requests: list[Request]) -> list[Request]:
    """Page requests first, then API, then batches; arrival order within each (a stable sort)."""
    return sorted(requests, key=lambda r: r.priority)


# -- which service serves a model ---------------------------------------------------------------------------
_lock = threading.Lock()
_services: weakref.WeakValueDictionary[int, GenerationService] = weakref.WeakValueDictionary()
_unowned: OrderedDict[int, GenerationService] = OrderedDict()  # services nobody else holds, most recent last
UNOWNED_KEPT = 4


def service_for(model) -> GenerationService:
    """The service of `model`: the one its model-cache entry owns (rp_eval/models/loading.py), else one kept
    here for the few models most recently used without the cache (tests, an evolution's resident model)."""
    with _lock:
        service = _services.get(id(model))
        if service is not None and service.model is model and not service.closed:
            return service
        service = GenerationService(model)
        _services[id(model)] = service
        _unowned[id(model)] = service
        while len(_unowned) > UNOWNED_KEPT:  # let go (a running request keeps its service until it ends)
            _unowned.popitem(last=False)
        return service


@atexit.register
def _close_all() -> None:
    """At interpreter exit, end every scheduler thread before torch is torn down: a daemon thread still inside
    a torch call while the interpreter finalizes aborts the process ("terminate called without an active
    exception"), which a one-shot `rp-eval generate` hit."""
    with _lock:
        services = list(_services.values()) + list(_unowned.values())
    for service in services:
        service.close(wait=5.0)


def own(model, service: GenerationService) -> None:
    """Register the service that a model-cache entry owns for `model` (it is not kept alive here)."""
    with _lock:
        _services[id(model)] = service
        _unowned.pop(id(model), None)
