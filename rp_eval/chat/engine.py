"""Decode engines: how the model is stepped. The stopping, sampling and cutting stay in `generate._decode`.

- `EagerEngine`: transformers' dynamic cache, one eager forward per step. Works for every model, CPU or GPU.
- `StaticEngine`: a preallocated KV cache of fixed shape and explicit 4-D attention masks, so every decode
  step has the same shapes and addresses; on CUDA the step is captured once in a CUDA graph and replayed
  (no Python or launch overhead per layer). Shapes are bucketed (batch to a power of two, length to a
  multiple of 128) so a new request reuses a captured graph instead of capturing again.

Written here rather than using transformers' `StaticCache` + `torch.compile` because that path compiled for
43 s at the first call and 62 s for every new batch shape (see issue notes and benchmarks/README.md), and its
internals move between transformers releases; this cache is a plain object with the one method the
attention layers call (`update`), and the masks are passed ready-made, so model code is used as it is.
"""

from __future__ import annotations

import torch

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


class StaticKV:
    """A fixed-size KV cache: keys/values [batch, kv_heads, capacity, head_dim] per layer, written at `write_at`
    (a 1-D index tensor on the device, advanced in place). Attention reads the first `view` columns (a
    multiple of 128 set per captured graph); the 4-D mask says which of them count."""

    is_compileable = True

    def __init__(self, layers: int, batch: int, kv_heads: int, capacity: int, head_dim: int, dtype, device) -> None:
        shape = (batch, kv_heads, capacity, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.write_at = torch.zeros(1, dtype=torch.long, device=device)
        self.capacity = capacity
        self.view = capacity

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        n = key_states.shape[-2]
        index = self.write_at + torch.arange(n, device=key_states.device) if n > 1 else self.write_at
        self.keys[layer_idx].index_copy_(2, index, key_states)
        self.values[layer_idx].index_copy_(2, index, value_states)
        return self.keys[layer_idx][:, :, : self.view], self.values[layer_idx][:, :, : self.view]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0  # positions are always passed explicitly

    def __len__(self) -> int:
        return len(self.keys)


def _shape(model) -> tuple[int, int, int]:
    c = model.config
    heads = c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    return c.num_hidden_layers, getattr(c, "num_key_value_heads", None) or heads, head_dim


def supports_static(model) -> bool:
    """Llama- and Mistral-style decoders (rotary positions, SDPA/eager attention, no sliding window inside the
    lengths we use); everything else takes the eager engine."""
    c = getattr(model, "config", None)
    if c is None or hasattr(model, "get_base_model") or getattr(c, "model_type", "") not in ("llama", "mistral"):
        return False
    return getattr(c, "_attn_implementation", "sdpa") in ("sdpa", "eager", ATTENTION)


class StaticEngine:
    """Fixed-shape decoding with explicit masks; the decode step is a replayed CUDA graph on a GPU.

    One cache per batch bucket (its capacity a power of two, at least 512 columns, grown when a request needs
    more); one graph per (batch bucket, attended length), the length a multiple of 128 that grows as the reply
    does, so a longer chat switches to the next graph over the same cache instead of capturing anew."""

    def __init__(self, model, use_graph: bool | None = None, fused: bool | None = None) -> None:
        from rp_eval.chat.fused import FusedStep, supports_fused

        self.model = model
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.min = torch.finfo(self.dtype).min  # additive masks: 0 attends, min does not (eager and SDPA alike)
        self.use_graph = self.device.type == "cuda" if use_graph is None else use_graph
        self.layers, self.kv_heads, self.head_dim = _shape(model)
        self.window = getattr(model.config, "sliding_window", None) or 0
        self.limit = getattr(model.config, "max_position_embeddings", 4096)
        self._slots: dict[int, dict] = {}  # batch bucket -> cache, buffers and graphs by length
        self.captures = 0
        self._pool = None  # the prefill graphs' shared memory pool
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        import inspect

        self.cache_arg = "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"
        _use_own_attention(model)
        # the decode step in a few compiled kernels (rp_eval/chat/fused.py) wherever graphs are used
        fused = self.use_graph if fused is None else fused
        self.fused = FusedStep(model, compile=self.device.type == "cuda") if fused and supports_fused(model) else None

    def fits(self, batch: int, length: int) -> bool:
        cap = min(self.window or self.limit, self.limit)
        return _bucket_length(length) <= cap

    def _slot(self, batch: int, length: int) -> dict:
        b = _bucket_batch(batch)
        need = max(256, 1 << (_bucket_length(length) - 1).bit_length())
        slot = self._slots.get(b)
        if slot is None or slot["cache"].capacity < need:
            if slot is None and len(self._slots) >= 3:  # keep memory bounded: drop the oldest batch size
                self._slots.pop(next(iter(self._slots)))
            self._slots.pop(b, None)
            torch.cuda.empty_cache() if self.device.type == "cuda" else None
            slot = self._slots[b] = {
                "cache": StaticKV(self.layers, b, self.kv_heads, need, self.head_dim, self.dtype, self.device),
                "bias": torch.full((b, 1, 1, need), self.min, dtype=self.dtype, device=self.device),
                "ids": torch.zeros(b, 1, dtype=torch.long, device=self.device),
                "pos": torch.zeros(b, 1, dtype=torch.long, device=self.device),
                "graphs": {},  # attended length -> (graph, logits buffer)
                "prefills": {},  # padded prompt length (batch 1) -> (graph, input buffers, logits buffer)
            }
        return slot

    def _run(self, slot: dict, ids: torch.Tensor, positions: torch.Tensor, mask4d: torch.Tensor) -> torch.Tensor:
        out = self.model(
            input_ids=ids,
            attention_mask=mask4d,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_arg: slot["cache"]},
        )
        return out.logits[:, -1, :]

    def prefill(self, input_ids: torch.Tensor, mask: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        rows, width = input_ids.shape
        padded = self.fused is not None and rows == 1 and width <= PREFILL_GRAPH_MAX
        graphed = padded and self.use_graph
        if padded:  # a chat prompt: left-padded to its length bucket, replayed from a graph on a GPU (no launches)
            pad = _bucket_length(width) - width
            input_ids = torch.nn.functional.pad(input_ids, (pad, 0), value=0)
            mask = torch.nn.functional.pad(mask, (pad, 0), value=0)
            width += pad
        slot = self._slot(rows, width + max_new_tokens)
        self.slot, self.rows, self.cursor = slot, rows, width
        b = slot["ids"].shape[0]
        view = _bucket_length(width)
        ids = torch.zeros(b, width, dtype=torch.long, device=self.device)
        ids[:rows] = input_ids
        valid = torch.zeros(b, width, dtype=torch.bool, device=self.device)
        valid[:rows] = mask.bool()
        valid[rows:, -1] = True  # filler rows attend to one token, so their softmax stays finite
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        bias = slot["bias"]
        bias.fill_(self.min)
        bias[:, 0, 0, :width].masked_fill_(valid, 0.0)
        causal = torch.ones(width, view, dtype=torch.bool, device=self.device).tril()
        allowed = causal[None, None] & (bias[..., :view] == 0)
        mask4d = torch.full(allowed.shape, self.min, dtype=self.dtype, device=self.device).masked_fill_(allowed, 0.0)
        slot["cache"].write_at.fill_(0)
        slot["cache"].view = view
        if graphed:
            logits = self._prefill_graph(slot, ids, positions, mask4d)
        elif self.fused is not None:
            logits = self.fused(ids, positions, slot["cache"], mask4d)
        else:
            logits = self._run(slot, ids, positions, mask4d)
        slot["cache"].write_at.fill_(width)
        slot["pos"].copy_(positions[:, -1:] + 1)
        return logits[:rows]

    def _prefill_graph(self, slot: dict, ids: torch.Tensor, positions: torch.Tensor, mask4d: torch.Tensor):
        """The fused prefill of one prompt of this padded length, from a graph captured at its first use (or at
        warm-up). Prefill graphs share one memory pool: they never run at the same time."""
        width = ids.shape[1]
        if width not in slot["prefills"]:
            inputs = (ids.clone(), positions.clone(), mask4d.clone())
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    slot["cache"].write_at.fill_(0)
                    self.fused(*inputs[:2], slot["cache"], inputs[2])
            torch.cuda.current_stream().wait_stream(stream)
            slot["cache"].write_at.fill_(0)
            self._pool = self._pool if self._pool is not None else torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                logits = self.fused(*inputs[:2], slot["cache"], inputs[2])
            slot["prefills"][width] = (graph, inputs, logits)
            self.captures += 1
        graph, inputs, logits = slot["prefills"][width]
        for buffer, value in zip(inputs, (ids, positions, mask4d), strict=True):
            buffer.copy_(value)
        slot["cache"].write_at.fill_(0)
        graph.replay()
        return logits.clone()

    def _decode_step(self, slot: dict, view: int) -> torch.Tensor:
        slot["bias"].index_fill_(-1, slot["cache"].write_at, 0.0)
        slot["cache"].view = view
        if self.fused is not None:
            logits = self.fused(slot["ids"], slot["pos"], slot["cache"], slot["bias"][..., :view])
        else:
            logits = self._run(slot, slot["ids"], slot["pos"], slot["bias"][..., :view])
        slot["cache"].write_at.add_(1)
        slot["pos"].add_(1)
        return logits

    def step(self, next_ids: torch.Tensor) -> torch.Tensor:
        slot = self.slot
        view = _bucket_length(self.cursor + 1)
        self.cursor += 1
        slot["ids"][: self.rows, 0] = next_ids
        if not self.use_graph:
            return self._decode_step(slot, view)[: self.rows]
        if view not in slot["graphs"]:
            self._capture(slot, view)
        graph, logits = slot["graphs"][view]
        graph.replay()
        return logits[: self.rows].clone()  # out of graph memory before the next replay

    def warm_up(self, batch: int = 1, length: int = 1024) -> float:
        """Compile the fused step and capture the decode graphs for `batch` rows up to `length` columns now (at
        model load), so that no request pays for a compile or a capture later; returns the seconds it took."""
        import time

        start = time.perf_counter()
        if self.use_graph:
            with torch.inference_mode():  # as the decode loop runs: compiled for it, nothing kept for gradients
                self._warm_up(batch, length)
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def _warm_up(self, batch: int, length: int) -> None:
        slot = self._slot(batch, length)
        if self.fused is not None:  # the prefill compiles once for any prompt length; chat prompts get graphs
            widths = range(LENGTH_BUCKET, min(length - LENGTH_BUCKET, PREFILL_GRAPH_MAX) + 1, LENGTH_BUCKET)
            for width in widths if batch == 1 else [32]:
                ids = torch.full((batch, width), 1, dtype=torch.long, device=self.device)
                self.prefill(ids, torch.ones_like(ids), length - width)
        for view in range(LENGTH_BUCKET, _bucket_length(length) + 1, LENGTH_BUCKET):
            if view not in slot["graphs"]:
                self._capture(slot, view)

    def _capture(self, slot: dict, view: int) -> None:
        """Capture one decode step over `view` columns; warm-up runs on a side stream, and the cache position,
        positions and mask are put back afterwards, so capturing changes nothing."""
        cache = slot["cache"]
        saved = (cache.write_at.clone(), slot["pos"].clone(), slot["bias"].clone())
        cache.write_at.fill_(view - 1)  # any column inside the view
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                cache.write_at.fill_(view - 1)
                self._decode_step(slot, view)
        torch.cuda.current_stream().wait_stream(stream)
        cache.write_at.fill_(view - 1)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            logits = self._decode_step(slot, view)
        cache.write_at.copy_(saved[0])
        slot["pos"].copy_(saved[1])
        slot["bias"].copy_(saved[2])
        slot["graphs"][view] = (graph, logits)
        self.captures += 1
