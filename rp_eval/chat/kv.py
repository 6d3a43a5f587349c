"""The KV cache as the attention layers see it, one object per forward: where each layer's new keys and
values are written (`update`) and what attention reads back. The static engine (rp_eval/chat/engine.py) makes
one per step or prefill; transformers' layers call `update` as they call their own caches' (the engine passes
positions and masks ready-made), and the fused step (rp_eval/chat/fused.py) calls it too.

Rows layout: one whole row of columns per request. Blocks layout: fixed-size blocks from one pool
(rp_eval/chat/blocks.py), each row's in its block table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from rp_eval.chat.attention import write_kv, write_kv_blocks
from rp_eval.chat.blocks import blocks_for

if TYPE_CHECKING:
    from rp_eval.chat.engine import StaticEngine


class _RowsKV:
    """The cache as the attention layers see it in one decode step: every row writes its new key and value at
    its own column (`write_at`), and attention reads the first `rows` rows over the first `view` columns."""

    is_compileable = True

    def __init__(self, engine: StaticEngine, rows: int, view: int) -> None:
        self.engine, self.rows, self.view = engine, rows, view
        e = engine
        self.index = e.write_at.view(-1, 1, 1, 1).expand(e.rows, e.kv_heads, 1, e.head_dim)
        self.lengths = e.write_at[:rows] + 1  # columns each row attends (for rp_eval/chat/attention.py)
        self.bias = e.bias[:rows]
        self.counts = e.counts

    def rows_of(self, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's keys and values of the attended rows, every column."""
        return self.engine.keys[layer_idx][: self.rows], self.engine.values[layer_idx][: self.rows]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        keys, values = self.engine.keys[layer_idx], self.engine.values[layer_idx]
        if self.engine.kernels:  # CUDA: one kernel writes both (rp_eval/chat/attention.py)
            write_kv(keys, values, key_states.contiguous(), value_states.contiguous(), self.engine.write_at)
        else:
            keys.scatter_(2, self.index, key_states)
            values.scatter_(2, self.index, value_states)
        return keys[: self.rows, :, : self.view], values[: self.rows, :, : self.view]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0  # positions are always passed explicitly

    def __len__(self) -> int:
        return len(self.engine.keys)


class _RowKV:
    """One prompt's keys and values written from column 0 into the engine's row named by a device index (so
    one CUDA graph serves every row), and attended as they are: the prompt sees only itself, so attention never
    reads them back from the cache (nor from a staging row copied into the cache after)."""

    is_compileable = True

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], row: torch.Tensor) -> None:
        self.keys, self.values, self.row = keys, values, row

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        n = key_states.shape[-2]
        self.keys[layer_idx][:, :, :n].index_copy_(0, self.row, key_states)
        self.values[layer_idx][:, :, :n].index_copy_(0, self.row, value_states)
        return key_states, value_states

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.keys)


class _PrefillKV:
    """Prompts written from column 0 into given keys/values tensors (a range of the engine's rows, or scratch
    rows), and attended from there."""

    is_compileable = True

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], width: int) -> None:
        self.keys, self.values, self.width = keys, values, width

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        n = key_states.shape[-2]
        self.keys[layer_idx][:, :, :n].copy_(key_states)
        self.values[layer_idx][:, :, :n].copy_(value_states)
        return self.keys[layer_idx][:, :, : self.width], self.values[layer_idx][:, :, : self.width]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.keys)


class _ScatterKV:
    """Keys and values written where an index says (per row and token: a prompt's suffix after its shared
    prefix; padding to a spare column), read over the first `width` columns."""

    is_compileable = True

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], index: torch.Tensor, width: int) -> None:
        self.keys, self.values, self.index, self.width = keys, values, index, width

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        self.keys[layer_idx].scatter_(2, self.index, key_states)
        self.values[layer_idx].scatter_(2, self.index, value_states)
        return self.keys[layer_idx][:, :, : self.width], self.values[layer_idx][:, :, : self.width]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.keys)


class _BlocksKV:
    """The block layout's cache in one decode step: each row writes its new key and value into the block its
    table names for its column (`write_at`), and attention reads each attended row's blocks up to `view`
    columns: in place through the tables by the fused step's Triton kernel on CUDA
    (attention.decode_attention_blocks), else gathered in table order into a copy for SDPA (the CPU, CUDA
    without Triton or without the fused step). Rows whose table is unused point at the spare block, whose
    contents no mask ever lets through."""

    is_compileable = True

    def __init__(self, engine: StaticEngine, rows: int, view: int) -> None:
        e, b = engine, engine.block_tokens
        self.engine, self.rows, self.view = engine, rows, view
        self.block = e.tables.gather(1, (e.write_at // b)[:, None])[:, 0]  # every row's block to write
        self.slot = e.write_at % b
        self.read = e.tables[:rows, : view // b]
        self.lengths = e.write_at[:rows] + 1
        self.bias = e.bias[:rows]
        self.counts = e.counts
        # the fused step on CUDA with Triton reads the blocks through the tables (attention.decode_attention_blocks)
        self.tables = self.read if e.kernels and e.fused is not None else None
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        keys, values = self.engine.keys[layer_idx], self.engine.values[layer_idx]
        if self.engine.kernels:  # CUDA: one kernel writes both through the tables (rp_eval/chat/attention.py)
            write_kv_blocks(
                keys,
                values,
                key_states.contiguous(),
                value_states.contiguous(),
                self.engine.write_at,
                self.engine.tables,
            )
        else:
            keys[self.block, :, self.slot] = key_states[:, :, 0]
            values[self.block, :, self.slot] = value_states[:, :, 0]
        if self.tables is not None:  # read in place by the kernel: nothing gathered
            return keys, values
        self.last = (_gather(keys, self.read), _gather(values, self.read))
        return self.last

    def pools(self, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.engine.keys[layer_idx], self.engine.values[layer_idx]

    def rows_of(self, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's keys and values of the attended rows, gathered by `update` just before."""
        assert self.last is not None
        return self.last

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.engine.keys)


def _gather(pool: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """[rows, kv_heads, blocks x block tokens, d] from the pool's blocks ([blocks, kv_heads, block tokens, d])
    that `tables` ([rows, blocks]) names."""
    rows, n = tables.shape
    _, heads, b, d = pool.shape
    return pool[tables].transpose(1, 2).reshape(rows, heads, n * b, d)


class _ChunkKV:
    """One chunk of a prompt (positions [start, end)) written through its block table, attending to every
    block of that table up to `end`. Positions before `keep` are already in the cache (shared blocks): what the
    chunk computes for them goes to the spare block, so a shared block is never rewritten."""

    is_compileable = True

    def __init__(self, engine: StaticEngine, table: torch.Tensor, start: int, end: int, keep: int) -> None:
        b = engine.block_tokens
        positions = torch.arange(start, end, device=table.device)
        self.engine, self.end = engine, end
        self.block = torch.where(positions < keep, engine.trash, table[positions // b])
        self.slot = positions % b
        self.read = table[None, : blocks_for(end, b)]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        keys, values = self.engine.keys[layer_idx], self.engine.values[layer_idx]
        keys[self.block, :, self.slot] = key_states[0].transpose(0, 1)
        values[self.block, :, self.slot] = value_states[0].transpose(0, 1)
        return _gather(keys, self.read)[:, :, : self.end], _gather(values, self.read)[:, :, : self.end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.engine.keys)
