"""The generation service's admission by blocks (the engine's blocks layout), as a part of
`rp_eval.chat.service.GenerationService` kept in its own file: a request's prompts queue in
`rp_eval.chat.blocks.Admission`, each is prefilled when its blocks are free (from the blocks it finds cached),
each new token is recorded in the pool, and the rows paused for want of blocks leave the engine and resume later
by recompute. Every method runs on the service's scheduler thread."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from rp_eval.chat.blocks import TooLong
from rp_eval.chat.generate import GenerationError

if TYPE_CHECKING:
    from rp_eval.chat.service import Request


class BlockAdmission:
    """Mixed into GenerationService; uses its engine (`_static`), sampler, row owners and `_take`."""

    def _queue(self, request: Request, priority: int) -> None:
        """Each prompt of the request into the admission queue (before waiting ones of a lower priority: a
        larger number); a prompt that could never fit the pool fails
        the whole request now, before any work."""
        for i, ids in enumerate(request.encoded):
            key = (id(request), i)
            try:
                self.admission.submit(key, ids, request.settings.max_new_tokens, priority)
            except TooLong as err:
                raise GenerationError(f"this request can never fit the model's KV cache: {err}") from None
            self._keys[key] = (request, i)

    def _schedule(self) -> None:
        """Prefill the requests the pool admits now (while rows are free), each from the blocks it found
        cached; a resumed request prefills its prompt and its reply so far. One is admitted at a time, after
        the one before it is written, so prompts arriving together (an evaluation batch, a burst of chats
        with one persona) find the beginning the earlier ones wrote."""
        engine, sampler, admission = self._static, self._sampler, self.admission
        free = [r for r, owner in enumerate(self._owners) if owner is None]
        while free and admission.waiting:
            admitted = admission.schedule(most=1)
            if not admitted:
                break
            key = admitted[0]
            request, i = self._keys[key]
            row, r = request.rows[i], free.pop(0)
            if not row.ids:
                row.placed = time.perf_counter() - request.submitted  # what it waited, before its prefill
            logits = engine.prefill(r, admission.pool.recorded(key), admission.cached[key], admission.pool.table(key))
            admission.pool.written(key)
            sampler.assign(r, request.settings, request.encoded[i], request.seeds[i], request.tokenizer)
            if row.ids:  # resumed: the sampler as it was when the row was paused
                self._resume_sampler(r, row.ids, self._random.pop(key, None))
            self._owners[r] = (request, i)
            row.slot = r
            first_ids = sampler.sample(logits, [r], packed=True)
            engine.ids[r, 0] = first_ids[0]
            self._take(request, [(i, r)], first_ids.tolist(), packed=True)

    def _resume_sampler(self, r: int, made: list[int], random_state) -> None:
        sampler = self._sampler
        if sampler.penalised[r]:  # the reply so far counts for the penalties, as it did before the pause
            ids = torch.tensor(made, device=self.device)
            sampler.seen[r].index_add_(0, ids, torch.ones_like(ids, dtype=torch.int32))
            sampler.made[r].index_add_(0, ids, torch.ones_like(ids, dtype=torch.int32))
        if sampler.dry_on[r]:  # DRY reads the reply so far as part of the text it looks back over
            end = min(sampler.length[r] + len(made), sampler.history.shape[1])
            sampler.history[r, sampler.length[r] : end] = torch.tensor(
                made[: end - sampler.length[r]], device=self.device
            )
            sampler.length[r] = end
        if sampler.banned[r]:  # a banned string may span the pause
            sampler.reply[r] = list(made)
        if random_state is not None and sampler.generators[r] is not None:
            sampler.generators[r].set_state(random_state)

    def _grow_all(self, made: list[tuple[Request, int, int, int]]) -> None:
        """The pool records the tokens of one step (request, its row, engine row, token) in admission order;
        a row paused before its own turn keeps its token (it resumes after it)."""
        pending = {(id(request), i): token for request, i, _, token in made}
        for request, i, r, _ in made:
            key = (id(request), i)
            if key in pending and key in self.admission.running:
                self._grow(request, i, r, pending.pop(key), pending)

    def _grow(self, request: Request, i: int, r: int, token: int, pending: dict | None = None) -> None:
        """The pool records row (request, i)'s new token; rows paused to make room leave their engine rows."""
        admission, engine = self.admission, self._static
        key = (id(request), i)
        for victim in admission.grow(key, token, pending):
            other, j = self._keys[victim]
            slot = other.rows[j].slot
            if slot >= 0:
                generator = self._sampler.generators[slot]
                self._random[victim] = generator.get_state() if generator is not None else None
                self._owners[slot] = None
                engine.release(slot)
            other.rows[j].slot = -1  # waiting again
            self.paused += 1
        if admission.pool.holds(key) and request.rows[i].slot == r:
            table = admission.pool.table(key)
            if len(table) != engine.table_sizes[r]:
                engine.set_table(r, table)
            admission.pool.written(key, admission.pool.tokens(key) - 1)  # the newest token is written next step

    def _forget(self, request: Request) -> None:
        """The request's rows leave the admission queue and the pool (waiting, paused or running)."""
        for i in range(len(request.rows)):
            key = (id(request), i)
            if self._keys.pop(key, None) is not None:
                self.admission.cancel(key)
            self._random.pop(key, None)
