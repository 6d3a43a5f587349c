"""Decode engines: how the model is stepped. The stopping, sampling and cutting stay in `generate._decode`.

- `EagerEngine`: transformers' dynamic cache, one eager forward per step. Works for every model, CPU or GPU.
- `StaticEngine`: a preallocated KV cache of fixed shape and explicit 4-D attention masks, so every decode
  step has the same shapes and addresses; on CUDA the step is captured once in a CUDA graph and replayed
  (no Python or launch overhead per layer). Shapes are bucketed (batch to a power of two, length to a
  multiple of 128) so a new request reuses a captured graph instead of capturing again. The cache is whole
  rows or blocks from one pool (rp_eval/chat/kv.py, rp_eval/chat/blocks.py).

Written here rather than using transformers' `StaticCache` + `torch.compile` because that path compiled for
43 s at the first call and 62 s for every new batch shape (see issue notes and benchmarks/README.md), and its
internals move between transformers releases; this cache is a plain object with the one method the
attention layers call (`update`), and the masks are passed ready-made, so model code is used as it is.
"""

from __future__ import annotations

import torch

from rp_eval.chat.attention import available
from rp_eval.chat.blocks import BLOCK_TOKENS, blocks_for, plan_blocks
from rp_eval.chat.kv import _BlocksKV, _ChunkKV, _PrefillKV, _RowKV, _RowsKV, _ScatterKV

LENGTH_BUCKET = 128
PREFILL_GRAPH_MAX = 2048  # longer chat prompts are prefilled without a graph
ATTENTION = "rp_eval_sdpa"


def _attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """SDPA without copying keys and values for grouped-query attention (Mistral: 8 KV heads for 32 query heads).

    transformers' own SDPA path repeats K and V to every query head whenever a mask is given, which at batch 64
    moves several GB per decode step. For one query token, the query heads of a group are laid out as that
    group's queries instead, so SDPA reads each K/V head once; longer queries use `enable_gqa`."""
    groups = query.shape[1] // key.shape[1]
    if groups > 1 and query.shape[2] == 1:
        b, h, _, d = query.shape
        out = torch.nn.functional.scaled_dot_product_attention(
            query.reshape(b, key.shape[1], groups, d), key, value, attn_mask=attention_mask, scale=scaling
        ).reshape(b, h, 1, d)
    else:
        causal = attention_mask is None and query.shape[2] > 1
        out = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, is_causal=causal, scale=scaling, enable_gqa=groups > 1
        )
    return out.transpose(1, 2).contiguous(), None


def _use_own_attention(model) -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, _attention)
    if ATTENTION not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    model.config._attn_implementation = ATTENTION


def _bucket_batch(n: int) -> int:
    return 1 << (n - 1).bit_length()


def _bucket_length(n: int) -> int:
    return -(-n // LENGTH_BUCKET) * LENGTH_BUCKET


class EagerEngine:
    """One eager forward per step on a dynamic cache (the plain path)."""

    def __init__(self, model) -> None:
        self.model = model
        self.cache = None
        self.mask: torch.Tensor | None = None
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        import inspect

        params = inspect.signature(inner.forward).parameters
        # transformers renamed `past_key_values` to `cache` (5.2x); speak whichever the model's forward takes
        self.cache_arg = "cache" if "cache" in params else "past_key_values"

    def _forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        out = self.model(
            input_ids=ids,
            attention_mask=self.mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_arg: self.cache},
        )
        self.cache = out.get("cache")
        if self.cache is None:  # transformers before the rename
            self.cache = out.get("past_key_values")
        return out.logits[:, -1, :]

    def prefill(self, input_ids: torch.Tensor, mask: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        self.cache, self.mask = None, mask
        return self._forward(input_ids)

    def step(self, next_ids: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, torch.ones_like(next_ids[:, None])], dim=1)
        return self._forward(next_ids[:, None])


SHARED_LEAST = 16  # tokens a common beginning must have to be prefilled once for several prompts
SHARED_WORTH = 0.75  # the shared prefill is used when it prefills at most this share of the plain one's tokens
SHARED_SCRATCH = 2 << 30  # bytes of keys and values of the shared beginnings held at once (more: several passes)


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def shared_prefixes(prompts: list[list[int]]) -> list[tuple[int, list[int]]]:
    """Groups of prompts (indices) that begin with the same tokens, each with the length of that beginning
    (at most each member's length - 1, so every prompt keeps a token of its own; 0 for a prompt alone): the
    grouping that saves the most prefilled tokens, sum of (members - 1) x length. Sorted, prompts that share
    a beginning are neighbours, so the groups are runs of the sorted order, chosen by dynamic programming
    (an evaluation batch's prompts share their persona's system text: most of each prompt)."""
    order = sorted(range(len(prompts)), key=lambda i: prompts[i])
    n = len(order)
    link = [_common(prompts[order[k]], prompts[order[k + 1]]) for k in range(n - 1)]
    best, cut = [0] * (n + 1), [0] * (n + 1)
    for j in range(1, n + 1):
        best[j], cut[j] = best[j - 1], j - 1
        length = len(prompts[order[j - 1]]) - 1
        for i in range(j - 2, -1, -1):  # the group order[i:j]
            length = min(length, link[i], len(prompts[order[i]]) - 1)
            if length < SHARED_LEAST:
                break
            if best[i] + (j - i - 1) * length > best[j]:
                best[j], cut[j] = best[i] + (j - i - 1) * length, i
    groups, j = [], n
    while j > 0:
        i = cut[j]
        members = order[i:j]
        length = min([*link[i : j - 1], *(len(prompts[m]) - 1 for m in members)]) if j - i > 1 else 0
        groups.append((length, members))
        j = i
    return groups[::-1]


def _shape(model) -> tuple[int, int, int]:
    c = model.config
    heads = c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    return c.num_hidden_layers, getattr(c, "num_key_value_heads", None) or heads, head_dim


def supports_static(model) -> bool:
    """Llama- and Mistral-style decoders (rotary positions, SDPA/eager attention); everything else takes the
    eager engine."""
    c = getattr(model, "config", None)
    if c is None or hasattr(model, "get_base_model") or getattr(c, "model_type", "") not in ("llama", "mistral"):
        return False
    return getattr(c, "_attn_implementation", "sdpa") in ("sdpa", "eager", ATTENTION)


def kv_bytes_per_token(model) -> int:
    layers, kv_heads, head_dim = _shape(model)
    return 2 * layers * kv_heads * head_dim * next(model.parameters()).element_size()


KV_LAYOUTS = ("rows", "blocks")
BLOCK_ROWS = 32  # requests a blocks-layout engine decodes at once by default


def default_layout(device: torch.device) -> str:
    """The KV layout a static engine takes when none is asked for: the `kv_layout` setting (rp_eval.yaml or
    RP_EVAL_KV_LAYOUT) when not "auto", else "blocks" on the CPU (where the tests run it) and "rows" on CUDA
    (its blocks path has not been run on a GPU yet: tests/gpu/RESULTS.md)."""
    from rp_eval.settings import config

    chosen = config().kv_layout
    if chosen != "auto":
        return chosen
    return "rows" if device.type == "cuda" else "blocks"


def _budget(model) -> int:
    """Bytes of KV cache planned by default: 60% of the free GPU memory, or 2 GB on a CPU."""
    device = next(model.parameters()).device
    return int(torch.cuda.mem_get_info(device)[0] * 0.6) if device.type == "cuda" else 2 << 30


def plan(
    model, budget_bytes: int | None = None, most_rows: int = 32, longest: int = 4096, columns: int | None = None
) -> tuple[int, int]:
    """(rows, columns) of the KV cache: columns the model's context (at most `longest`, in whole buckets),
    rows the largest power of two up to `most_rows` whose cache fits the budget (default: 60% of the free GPU
    memory, or 2 GB on a CPU). Requests longer than the columns run on the eager engine instead."""
    context = getattr(model.config, "max_position_embeddings", 2048) or 2048
    window = getattr(model.config, "sliding_window", None) or context
    columns = max(LENGTH_BUCKET, min(context, window, columns or longest) // LENGTH_BUCKET * LENGTH_BUCKET)
    if budget_bytes is None:
        budget_bytes = _budget(model)
    rows = most_rows
    while rows > 1 and rows * columns * kv_bytes_per_token(model) > budget_bytes:
        rows //= 2
    return rows, columns


class StaticEngine:
    """A fixed-size KV cache of `rows` rows × `columns` columns; each row holds one request at its own length.

    A request is prefilled into a free row (`prefill`, `prefill_rows`), then every `step` decodes one token
    for every row at once: row r writes at its own column `write_at[r]` and attends to the columns its mask
    allows. The engine keeps no request state beyond the rows' cache, positions and masks: which row belongs
    to whom, sampling and stopping live in the generation service (rp_eval/chat/service.py), which is the
    only caller and calls from one thread.

    Batch invariance: the matrix products of a step always run over all `rows` rows (the same kernels whatever
    the number of requests, so a row's numbers never depend on its neighbours), attention only over the first
    `attend` rows (a power of two covering the rows in use) and the first `view` columns (a multiple of 128
    covering the longest row); masked columns add exact zeros. On CUDA each (attend, view) step is a CUDA graph
    captured at `warm_up` (never during a request: a shape without a graph runs without one), and so are chat
    prefills up to PREFILL_GRAPH_MAX columns (one graph per width for every row: the row is a device index).

    Two layouts of the same cache (`kv_layout`, default `default_layout`): "rows" reserves `columns` columns of
    keys and values per row; "blocks" keeps one pool of `blocks` blocks of BLOCK_TOKENS tokens per layer and a
    block table per row (`tables`, a device tensor: the decode graphs read it as an input, so they are captured
    at load as for rows), filled by the caller from rp_eval/chat/blocks.py (`set_table`). A row then costs only
    the blocks its request holds, and a prompt whose beginning is cached prefills only the rest (`prefill` with
    `cached`). Blocks-layout prefills run in fixed chunks without a graph (`_prefill_blocks`)."""

    def __init__(
        self,
        model,
        rows: int | None = None,
        columns: int | None = None,
        use_graph: bool | None = None,
        fused: bool | None = None,
        kv_layout: str | None = None,
        blocks: int | None = None,
        prefill_chunk: int = BLOCK_TOKENS,
    ) -> None:
        from rp_eval.chat.fused import FusedStep, supports_fused

        self.model = model
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.min = torch.finfo(self.dtype).min  # additive masks: 0 attends, min does not (eager and SDPA alike)
        self.use_graph = self.device.type == "cuda" if use_graph is None else use_graph
        self.kernels = available(self.device)  # the Triton cache write of rp_eval/chat/attention.py
        self.layers, self.kv_heads, self.head_dim = _shape(model)
        self.layout = kv_layout or default_layout(self.device)
        if self.layout not in KV_LAYOUTS:
            raise ValueError(f"kv_layout must be 'rows' or 'blocks' (got {kv_layout!r})")
        planned = plan(model, columns=columns)  # never past the model's context
        # rows of the blocks layout reserve no memory (their blocks come from the pool): as many as a step batches
        self.rows = rows or (planned[0] if self.layout == "rows" else BLOCK_ROWS)
        self.columns = planned[1]
        self.limit = self.columns
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        import inspect

        self.cache_arg = "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"
        _use_own_attention(model)
        fused = supports_fused(model) if fused is None else fused and supports_fused(model)
        self.fused = FusedStep(model, compile=self.device.type == "cuda") if fused else None
        kw = {"dtype": self.dtype, "device": self.device}
        self.prefilled = 0  # prompt tokens run through a prefill (a cached prefix is not), for tests and logs
        if self.layout == "blocks":
            self.block_tokens = BLOCK_TOKENS
            if prefill_chunk < 1 or prefill_chunk % BLOCK_TOKENS:
                raise ValueError(f"prefill_chunk must be a positive multiple of {BLOCK_TOKENS} (got {prefill_chunk})")
            self.chunk = prefill_chunk
            per_row = self.columns // BLOCK_TOKENS
            # never more than every row at its whole length could use; else what the budget holds
            self.blocks = blocks or min(
                self.rows * per_row, plan_blocks(kv_bytes_per_token(model), _budget(model)).blocks
            )
            self.trash = self.blocks  # one spare block: free rows write there, nothing reads it unmasked
            shape = (self.blocks + 1, self.kv_heads, BLOCK_TOKENS, self.head_dim)
            self.tables = torch.full((self.rows, per_row), self.trash, dtype=torch.long, device=self.device)
            self.table_sizes = [0] * self.rows  # host copy: blocks in each row's table
        else:
            shape = (self.rows, self.kv_heads, self.columns, self.head_dim)
        self.keys = [torch.zeros(shape, **kw) for _ in range(self.layers)]
        self.values = [torch.zeros(shape, **kw) for _ in range(self.layers)]
        self.bias = torch.full((self.rows, 1, 1, self.columns), self.min, **kw)
        # the decode attention's counters of finished chunks (rp_eval/chat/attention.py), this engine's own
        heads = model.config.num_attention_heads
        self.counts = torch.zeros(self.rows * heads, dtype=torch.int32, device=self.device) if self.kernels else None
        self.ids = torch.zeros(self.rows, 1, dtype=torch.long, device=self.device)
        self.pos = torch.zeros(self.rows, 1, dtype=torch.long, device=self.device)
        self.write_at = torch.zeros(self.rows, dtype=torch.long, device=self.device)
        self.moving = torch.zeros(self.rows, dtype=torch.long, device=self.device)  # 1 for rows in use
        self.lengths = [0] * self.rows  # host copy of write_at for rows in use
        self.graphs: dict[tuple[int, int], tuple] = {}  # (attend, view) -> (graph, logits)
        self.prefills: dict[int, tuple] = {}  # padded width -> (graph, inputs, logits)
        self.captures = 0
        self._pool = None

    # -- rows ---------------------------------------------------------------------------------------------
    def padded(self, width: int) -> int:
        """The columns a prompt of `width` tokens takes: its 128-bucket where a prefill graph was captured for
        it (graphs have fixed shapes), else its own width."""
        bucket = _bucket_length(width)
        return bucket if bucket in self.prefills else width

    def fits(self, width: int, new_tokens: int) -> bool:
        """Whether a prompt of `width` tokens and its reply fit in one row (with one column to spare: on a GPU
        a finished row rides along one more step before it is read)."""
        return self.padded(width) + new_tokens + 1 <= self.columns

    def set_table(self, row: int, table: list[int]) -> None:
        """The blocks of row `row` in order (the blocks layout): its prefill and decode steps write and read
        through them. Called again when the row's request took more blocks."""
        if len(table) > self.tables.shape[1]:
            raise ValueError(f"{len(table)} blocks do not fit a row of {self.columns} columns")
        self.tables[row].fill_(self.trash)
        self.tables[row, : len(table)] = torch.tensor(table, dtype=torch.long, device=self.device)
        self.table_sizes[row] = len(table)

    def release(self, row: int) -> None:
        """Row `row` is free again: it stops moving and attends to column 0 only (finite softmax)."""
        if self.layout == "blocks":
            self.tables[row].fill_(self.trash)
            self.table_sizes[row] = 0
        self.moving[row] = 0
        self.write_at[row] = 0
        self.pos[row] = 0
        self.bias[row].fill_(self.min)
        self.lengths[row] = 0

    def _occupy(self, row: int, width: int, valid: torch.Tensor, last_position: int) -> None:
        self.bias[row].fill_(self.min)
        self.bias[row, 0, 0, :width].masked_fill_(valid.bool(), 0.0)
        self.write_at[row] = width
        self.pos[row] = last_position + 1
        self.moving[row] = 1
        self.lengths[row] = width

    @staticmethod
    def _masks(valid: torch.Tensor, min_value: float, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """positions and the 4-D additive mask of a left-padded prompt batch `valid` [n, width]."""
        width = valid.shape[1]
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        causal = torch.ones(width, width, dtype=torch.bool, device=valid.device).tril()
        allowed = causal[None, None] & valid.bool()[:, None, None, :]
        mask = torch.full(allowed.shape, min_value, dtype=dtype, device=valid.device).masked_fill_(allowed, 0.0)
        return positions, mask

    def _forward(self, ids, positions, cache, mask, attend: int | None = None) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(ids, positions, cache, mask, attend_rows=attend)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_arg: cache},
        )
        return out.logits[:, -1, :]

    def prefill(self, row: int, prompt: list[int], cached: int = 0, table: list[int] | None = None) -> torch.Tensor:
        """One prompt into row `row` (left-padded to its 128-bucket and replayed from a graph where the load
        captured one for that width); returns its next-token logits [1, vocab]. The blocks layout writes
        through `table` instead (the row's blocks, room for the prompt and one more token) and skips the first
        `cached` tokens, already in shared blocks (`_prefill_blocks`)."""
        if self.layout == "blocks":
            return self._prefill_blocks(row, prompt, cached, table)
        width = self.padded(len(prompt))
        pad = width - len(prompt)
        ids = torch.tensor([[0] * pad + prompt], device=self.device)
        valid = torch.tensor([[0] * pad + [1] * len(prompt)], device=self.device)
        positions, mask = self._masks(valid, self.min, self.dtype)
        if width in self.prefills:
            graph, inputs, logits = self.prefills[width]
            for buffer, value in zip(
                inputs, (ids, positions, mask, torch.tensor([row], device=self.device)), strict=True
            ):
                buffer.copy_(value)
            graph.replay()
            logits = logits.clone()
        else:
            cache = _RowKV(self.keys, self.values, torch.tensor([row], device=self.device))
            logits = self._forward(ids, positions, cache, mask)
        self._occupy(row, width, valid[0], int(positions[0, -1]))
        return logits

    def _prefill_blocks(self, row: int, prompt: list[int], cached: int, table: list[int] | None) -> torch.Tensor:
        """The prompt in chunks of `self.chunk` positions ([0, chunk), [chunk, 2 chunk), ...), each attending
        to every block before it and causally to itself, from the chunk holding the first uncached token.

        Chunks start at fixed positions, so a block's keys and values are the same numbers whichever request
        computed them and whether the blocks before came from the cache: a prompt served from a cached prefix
        gets exactly the logits of its full prefill (with chunk = block, the default; a longer chunk recomputes
        the cached part of its first chunk and writes it to the spare block, and is exact only where the
        prompt that filled the cache had the same chunk). Positions start at 0: no left padding."""
        n, b = len(prompt), self.block_tokens
        if table is None or len(table) * b < n + 1:
            raise ValueError(f"a prompt of {n} tokens needs a table of {blocks_for(n + 1, b)} blocks")
        if cached % b or not 0 <= cached < n:
            raise ValueError(f"cached tokens ({cached}) must be whole blocks and leave a token to prefill")
        self.set_table(row, table)
        device_table = self.tables[row]
        ids = torch.tensor([prompt], device=self.device)
        start = cached // self.chunk * self.chunk
        logits = None
        for first in range(start, n, self.chunk):
            end = min(first + self.chunk, n)
            positions = torch.arange(first, end, device=self.device)
            allowed = torch.arange(end, device=self.device)[None, :] <= positions[:, None]
            mask = torch.full((1, 1, end - first, end), self.min, dtype=self.dtype, device=self.device)
            mask.masked_fill_(allowed, 0.0)
            cache = _ChunkKV(self, device_table, first, end, cached)
            logits = self._forward(ids[:, first:end], positions[None], cache, mask)
        self.prefilled += n - start  # what ran: a longer chunk recomputes part of the cached prefix
        self._occupy(row, n, torch.ones(n, device=self.device), n - 1)
        return logits

    def prefill_rows(self, first: int, prompts: list[list[int]], share: bool = True) -> torch.Tensor:
        """Several prompts at once (an evaluation batch) into rows first, first+1, ...; left-padded together.
        Where prompts begin alike (`shared_prefixes`) and that saves enough (SHARED_WORTH), each common
        beginning is prefilled once and copied into its prompts' rows, then only the rest of each prompt is
        prefilled (`share=False`: always the plain way). The rows end as the plain way leaves them; the numbers
        differ in the last bits (other matrix shapes), as they do between batch sizes. The rows layout only:
        the blocks layout prefills each prompt through its own table (`prefill`)."""
        if self.layout == "blocks":
            raise ValueError("the blocks layout prefills one prompt at a time, through its block table")
        width = max(len(p) for p in prompts)
        n = len(prompts)
        if share and n > 1 and width < self.columns - 1:
            shared = [(length, members) for length, members in shared_prefixes(prompts) if length]
            prefix = {i: (g, length) for g, (length, members) in enumerate(shared) for i in members}
            own = [len(p) - prefix.get(i, (0, 0))[1] for i, p in enumerate(prompts)]
            tokens = len(shared) * max((length for length, _ in shared), default=0) + n * max(own)
            if shared and tokens <= SHARED_WORTH * n * width:
                return self._prefill_shared(first, prompts, shared, prefix, width)
        ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts], device=self.device)
        valid = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        positions, mask = self._masks(valid, self.min, self.dtype)
        rows = slice(first, first + n)
        cache = _PrefillKV([k[rows] for k in self.keys], [v[rows] for v in self.values], width)
        logits = self._forward(ids, positions, cache, mask)
        for i in range(n):
            self._occupy(first + i, width, valid[i], int(positions[i, -1]))
        return logits

    def _prefill_shared(self, first: int, prompts: list[list[int]], groups, prefix: dict, width: int) -> torch.Tensor:
        """`prefill_rows` with each group's common beginning prefilled once (`groups`: (length, members) of
        the beginnings shared; `prefix`: prompt index -> (group, length), none for a prompt that shares
        nothing). Row i ends as the plain way leaves it: its prompt in columns [width - len, width),
        positions 0.. from its first token; what is written for padding goes to the rows' last column (never
        read before a decode step writes it)."""
        n, device = len(prompts), self.device
        prefix = {i: prefix.get(i, (0, 0)) for i in range(n)}
        own = [len(p) - prefix[i][1] for i, p in enumerate(prompts)]  # tokens after the shared beginning
        spare = self.columns - 1
        longest = max(length for length, _ in groups)
        # 1. the beginnings, left-padded together, into scratch keys and values (as many at once as
        # SHARED_SCRATCH holds), and 2. each copied into its prompts' rows, right before where the rest will sit
        step = max(1, SHARED_SCRATCH // (longest * kv_bytes_per_token(self.model)))
        j = torch.arange(longest, device=device)
        for at in range(0, len(groups), step):
            part = groups[at : at + step]
            ids = [[0] * (longest - length) + prompts[m[0]][:length] for length, m in part]
            valid = torch.tensor([[0] * (longest - length) + [1] * length for length, _ in part], device=device)
            positions, mask = self._masks(valid, self.min, self.dtype)
            shape = (len(part), self.kv_heads, longest, self.head_dim)
            scratch = [torch.empty(shape, dtype=self.dtype, device=device) for _ in range(2 * self.layers)]
            cache = _PrefillKV(scratch[: self.layers], scratch[self.layers :], longest)
            self._forward(torch.tensor(ids, device=device), positions, cache, mask)
            members = [i for _, m in part for i in m]
            rows = torch.tensor([first + i for i in members], device=device)[:, None]
            source = torch.tensor([prefix[i][0] - at for i in members], device=device)
            skip = torch.tensor([longest - prefix[i][1] for i in members], device=device)[:, None]
            start = torch.tensor([width - own[i] - longest for i in members], device=device)[:, None]
            columns = torch.where(j[None, :] >= skip, start + j[None, :], spare)  # padding: to the spare column
            for layer in range(self.layers):  # [members, longest, kv_heads, head_dim] into rows × columns
                self.keys[layer][rows, :, columns] = scratch[layer][source].transpose(1, 2)
                self.values[layer][rows, :, columns] = scratch[self.layers + layer][source].transpose(1, 2)
            del scratch, cache
        rows = slice(first, first + n)
        # 3. the rest of each prompt, left-padded, attending to its beginning and causally to itself
        tail = max(own)
        ids = torch.tensor([[0] * (tail - own[i]) + p[prefix[i][1] :] for i, p in enumerate(prompts)], device=device)
        lengths = torch.tensor([len(p) for p in prompts], device=device)
        shift = torch.tensor([prefix[i][1] - (tail - own[i]) for i in range(n)], device=device)
        j = torch.arange(tail, device=device)
        positions = (shift[:, None] + j[None, :]).clamp(min=0)
        padding = j[None, :] < (tail - torch.tensor(own, device=device))[:, None]
        index = torch.where(padding, spare, width - tail + j[None, :])[:, None, :, None]
        index = index.expand(n, self.kv_heads, tail, self.head_dim)
        column = torch.arange(width, device=device)
        at = width - tail + j  # the column of each token of the rest
        allowed = (column[None, None, :] >= (width - lengths)[:, None, None]) & (
            column[None, None, :] <= at[None, :, None]
        )
        mask = torch.full(allowed.shape, self.min, dtype=self.dtype, device=device).masked_fill_(allowed, 0.0)[:, None]
        cache = _ScatterKV([k[rows] for k in self.keys], [v[rows] for v in self.values], index, width)
        logits = self._forward(ids, positions, cache, mask)
        for i in range(n):
            valid = column >= width - len(prompts[i])
            self._occupy(first + i, width, valid, len(prompts[i]) - 1)
        return logits

    def view(self) -> int:
        return _bucket_length(max(self.lengths) + 1)

    def step(self, attend: int) -> torch.Tensor:
        """One token for every row (the ids in `self.ids`); logits [rows, vocab]. `attend` covers the rows in
        use (a power of two)."""
        view = self.view()
        assert view <= self.columns, "a row outgrew the cache"
        for r in range(self.rows):
            if self.lengths[r]:
                self.lengths[r] += 1
        graph = self.graphs.get((attend, view))
        if graph is not None:
            graph[0].replay()
            return graph[1].clone()  # out of graph memory before the next replay
        return self._step(attend, view)

    def _step(self, attend: int, view: int) -> torch.Tensor:
        self.bias.scatter_(-1, self.write_at.view(-1, 1, 1, 1), 0.0)  # each row's new column attends
        layout = _BlocksKV if self.layout == "blocks" else _RowsKV
        cache = layout(self, attend if self.fused is not None else self.rows, view)
        mask = self.bias[: cache.rows, :, :, :view]
        logits = self._forward(self.ids, self.pos, cache, mask, attend=attend)
        self.write_at.add_(self.moving)
        self.pos.add_(self.moving[:, None])
        return logits

    # -- graphs (CUDA) ----------------------------------------------------------------------------------------
    def warm_up(self, prefill_up_to: int = PREFILL_GRAPH_MAX) -> float:
        """Compile the fused step and capture every decode graph (each attended row count and length) and the
        chat prefill graphs up to `prefill_up_to` columns now, at model load; returns the seconds it took.
        Requests never capture: a shape without a graph runs without one."""
        import time

        start = time.perf_counter()
        if self.use_graph:
            with torch.inference_mode():  # as the service runs: compiled for it, nothing kept for gradients
                self._pool = torch.cuda.graph_pool_handle()
                attends = [1 << i for i in range(self.rows.bit_length()) if 1 << i <= self.rows]
                # largest first, so that later captures reuse the pool's memory
                for view in range(self.columns, 0, -LENGTH_BUCKET):
                    for attend in reversed(attends):
                        self._capture(attend, view)
                # the blocks layout prefills in chunks without a graph (no capture during a request)
                top = min(prefill_up_to, self.columns) if self.layout == "rows" else 0
                for width in range(top // LENGTH_BUCKET * LENGTH_BUCKET, 0, -LENGTH_BUCKET):
                    self._capture_prefill(width)
                for r in range(self.rows):
                    self.release(r)
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def _on_side_stream(self, fn, times: int = 2) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(times):
                fn()
        torch.cuda.current_stream().wait_stream(stream)

    def _capture(self, attend: int, view: int) -> None:
        def body():
            self.write_at.fill_(view - 1)  # any column inside the view
            return self._step(attend, view)

        self._on_side_stream(body)
        graph = torch.cuda.CUDAGraph()
        self.write_at.fill_(view - 1)
        with torch.cuda.graph(graph, pool=self._pool):
            logits = self._step(attend, view)
        self.graphs[(attend, view)] = (graph, logits)
        self.captures += 1

    def _capture_prefill(self, width: int) -> None:
        """The prefill of one prompt padded to `width`, its keys and values written straight into the row named
        by a device index (so one graph serves every row)."""
        ids = torch.ones(1, width, dtype=torch.long, device=self.device)
        positions, mask = self._masks(torch.ones_like(ids), self.min, self.dtype)
        inputs = (ids, positions, mask, torch.zeros(1, dtype=torch.long, device=self.device))

        def body():
            return self._forward(inputs[0], inputs[1], _RowKV(self.keys, self.values, inputs[3]), inputs[2])

        self._on_side_stream(body)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            logits = body()
        self.prefills[width] = (graph, inputs, logits)
        self.captures += 1
