"""Decode attention whose result for a row depends on that row alone (CUDA, Triton).

SDPA's kernels choose how to split the keys from the whole call's shape (how many rows, how many columns are
attended), so one row's output changed in its last bits when other requests joined the batch, and with random
or nearly tied logits a greedy reply then took another token (seen on an H200: 570 of 585 soak replies
differed from the same request served alone). Here every (row, head) reads its own keys in fixed chunks of
CHUNK columns up to its own length, and the chunks are combined in a fixed order: the arithmetic is the same
whatever else is in the batch and however far the longest row reaches. Written by hand because no maintained
library ships batch-invariant decode attention over this project's own cache layout.

The mask is the engine's additive bias row (left padding of a prompt is masked there), the length of each row
is read from the device (`write_at + 1`), so the kernels run inside the engine's CUDA graphs unchanged.
"""

from __future__ import annotations

import torch

CHUNK = 64  # columns per program: fixed, so the split never depends on the batch (one block each: a short
BLOCK = 64  # chat's few chunks run side by side instead of one after another; profile_step.py measured 256)
ONE_KERNEL = True  # `attend` (partial and combine in one launch); False: the two kernels
WARPS = 2  # warps a program of the partial kernel (benchmarks/profile_fitness.py: 157 us against 182 with 4, 64 rows)


def available(device: torch.device) -> bool:
    if device.type != "cuda":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


_kernels = None


def _build():
    import triton
    import triton.language as tl

    @triton.jit
    def partial(
        Q, K, V, Bias, Lengths, Mo, Lo, Ao,
        sq_b, sq_h, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, sb_b, chunks, scale,
        GROUPS: tl.constexpr, D: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0)
        head = tl.program_id(1)
        chunk = tl.program_id(2)
        kv = head // GROUPS
        length = tl.load(Lengths + row)
        d = tl.arange(0, D)
        q = tl.load(Q + row * sq_b + head * sq_h + d).to(tl.float32)
        m = tl.full([1], float("-inf"), tl.float32)
        l_sum = tl.zeros([1], tl.float32)
        acc = tl.zeros([D], tl.float32)
        first = chunk * CHUNK
        end = tl.minimum(first + CHUNK, length)
        for start in range(first, end, BLOCK):
            n = start + tl.arange(0, BLOCK)
            valid = n < end
            # keys, values and mask asked for together: the values' load is in flight while the scores compute
            k = tl.load(K + row * sk_b + kv * sk_h + n[:, None] * sk_n + d[None, :], mask=valid[:, None], other=0.0)
            v = tl.load(V + row * sv_b + kv * sv_h + n[:, None] * sv_n + d[None, :], mask=valid[:, None], other=0.0)
            b = tl.load(Bias + row * sb_b + n, mask=valid, other=0.0).to(tl.float32)
            s = tl.sum(k.to(tl.float32) * q[None, :], 1) * scale
            s = tl.where(valid, s + b, float("-inf"))
            m_new = tl.maximum(m, tl.max(s, 0))
            alpha = tl.exp(m - m_new)
            p = tl.exp(s - m_new)
            l_sum = l_sum * alpha + tl.sum(p, 0)
            acc = acc * alpha + tl.sum(p[:, None] * v.to(tl.float32), 0)
            m = m_new
        at = (row * tl.num_programs(1) + head) * chunks + chunk
        tl.store(Mo + at + tl.arange(0, 1), m)
        tl.store(Lo + at + tl.arange(0, 1), l_sum)
        tl.store(Ao + at * D + d, acc)

    @triton.jit
    def combine(Mo, Lo, Ao, Out, Lengths, so_b, so_h, chunks, D: tl.constexpr, CHUNK: tl.constexpr):
        row = tl.program_id(0)
        head = tl.program_id(1)
        d = tl.arange(0, D)
        base = (row * tl.num_programs(1) + head) * chunks
        used = (tl.load(Lengths + row) + CHUNK - 1) // CHUNK  # the row's own chunks only
        m = tl.full([1], float("-inf"), tl.float32)
        for c in range(0, used):
            m = tl.maximum(m, tl.load(Mo + base + c + tl.arange(0, 1)))
        l_sum = tl.zeros([1], tl.float32)
        acc = tl.zeros([D], tl.float32)
        for c in range(0, used):  # in chunk order, whatever the other rows
            mc = tl.load(Mo + base + c + tl.arange(0, 1))
            w = tl.where(mc == float("-inf"), 0.0, tl.exp(mc - m))
            l_sum += w * tl.load(Lo + base + c + tl.arange(0, 1))
            acc += w * tl.load(Ao + (base + c) * D + d)
        tl.store(Out + row * so_b + head * so_h + d, (acc / l_sum).to(Out.dtype.element_ty))

    @triton.jit
    def attend(
        Q, K, V, Bias, Lengths, Mo, Lo, Ao, Out, Count,
        sq_b, sq_h, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, sb_b, so_b, so_h, chunks, scale,
        GROUPS: tl.constexpr, D: tl.constexpr, CHUNK: tl.constexpr,
    ):  # fmt: skip
        """`partial` and `combine` in one launch: each chunk as `partial`, then the last chunk of a (row, head)
        to finish (counted with an atomic) combines them, in chunk order, exactly as `combine` does."""
        row = tl.program_id(0)
        head = tl.program_id(1)
        chunk = tl.program_id(2)
        length = tl.load(Lengths + row)
        used = (length + CHUNK - 1) // CHUNK
        if chunk < used:
            kv = head // GROUPS
            d = tl.arange(0, D)
            q = tl.load(Q + row * sq_b + head * sq_h + d).to(tl.float32)
            n = chunk * CHUNK + tl.arange(0, CHUNK)
            valid = n < length
            k = tl.load(K + row * sk_b + kv * sk_h + n[:, None] * sk_n + d[None, :], mask=valid[:, None], other=0.0)
            v = tl.load(V + row * sv_b + kv * sv_h + n[:, None] * sv_n + d[None, :], mask=valid[:, None], other=0.0)
            b = tl.load(Bias + row * sb_b + n, mask=valid, other=0.0).to(tl.float32)
            s = tl.sum(k.to(tl.float32) * q[None, :], 1) * scale
            s = tl.where(valid, s + b, float("-inf"))
            m = tl.full([1], float("-inf"), tl.float32)
            m_new = tl.maximum(m, tl.max(s, 0))
            alpha = tl.exp(m - m_new)
            p = tl.exp(s - m_new)
            l_sum = tl.zeros([1], tl.float32) * alpha + tl.sum(p, 0)
            acc = tl.zeros([D], tl.float32) * alpha + tl.sum(p[:, None] * v.to(tl.float32), 0)
            base = (row * tl.num_programs(1) + head) * chunks
            tl.store(Mo + base + chunk + tl.arange(0, 1), m_new)
            tl.store(Lo + base + chunk + tl.arange(0, 1), l_sum)
            tl.store(Ao + (base + chunk) * D + d, acc)
            tl.debug_barrier()  # every thread's stores, then the count (released to the other programs)
            done = tl.atomic_add(Count + row * tl.num_programs(1) + head, 1, sem="acq_rel")
            if done == used - 1:
                m = tl.full([1], float("-inf"), tl.float32)
                for c in range(0, used):
                    m = tl.maximum(m, tl.load(Mo + base + c + tl.arange(0, 1), cache_modifier=".cg"))
                l_sum = tl.zeros([1], tl.float32)
                acc = tl.zeros([D], tl.float32)
                for c in range(0, used):
                    mc = tl.load(Mo + base + c + tl.arange(0, 1), cache_modifier=".cg")
                    w = tl.where(mc == float("-inf"), 0.0, tl.exp(mc - m))
                    l_sum += w * tl.load(Lo + base + c + tl.arange(0, 1), cache_modifier=".cg")
                    acc += w * tl.load(Ao + (base + c) * D + d, cache_modifier=".cg")
                tl.store(Out + row * so_b + head * so_h + d, (acc / l_sum).to(Out.dtype.element_ty))
                tl.store(Count + row * tl.num_programs(1) + head, 0)  # zero again for the next call

    @triton.jit
    def attend_blocks(
        Q, K, V, Tables, Bias, Lengths, Mo, Lo, Ao, Out, Count,
        sq_b, sq_h, sk_blk, sk_h, sk_n, sv_blk, sv_h, sv_n, st_b, sb_b, so_b, so_h, chunks, scale,
        GROUPS: tl.constexpr, D: tl.constexpr, CHUNK: tl.constexpr, BLOCK_TOKENS: tl.constexpr,
    ):  # fmt: skip
        """`attend` over the blocks layout: column n of a row is slot n % BLOCK_TOKENS of block
        Tables[row, n // BLOCK_TOKENS] of the pool (K, V: [blocks, kv_heads, BLOCK_TOKENS, d]). The same
        chunks and the same order of combining as `attend`, so a row's result is again its own alone. A copy
        of `attend` with only the addresses changed, so the rows layout's tuned kernel stays as it was."""
        row = tl.program_id(0)
        head = tl.program_id(1)
        chunk = tl.program_id(2)
        length = tl.load(Lengths + row)
        used = (length + CHUNK - 1) // CHUNK
        if chunk < used:
            kv = head // GROUPS
            d = tl.arange(0, D)
            q = tl.load(Q + row * sq_b + head * sq_h + d).to(tl.float32)
            n = chunk * CHUNK + tl.arange(0, CHUNK)
            valid = n < length
            block = tl.load(Tables + row * st_b + n // BLOCK_TOKENS, mask=valid, other=0)
            slot = n % BLOCK_TOKENS
            k_at = K + block[:, None] * sk_blk + kv * sk_h + slot[:, None] * sk_n + d[None, :]
            v_at = V + block[:, None] * sv_blk + kv * sv_h + slot[:, None] * sv_n + d[None, :]
            k = tl.load(k_at, mask=valid[:, None], other=0.0)
            v = tl.load(v_at, mask=valid[:, None], other=0.0)
            b = tl.load(Bias + row * sb_b + n, mask=valid, other=0.0).to(tl.float32)
            s = tl.sum(k.to(tl.float32) * q[None, :], 1) * scale
            s = tl.where(valid, s + b, float("-inf"))
            m = tl.full([1], float("-inf"), tl.float32)
            m_new = tl.maximum(m, tl.max(s, 0))
            alpha = tl.exp(m - m_new)
            p = tl.exp(s - m_new)
            l_sum = tl.zeros([1], tl.float32) * alpha + tl.sum(p, 0)
            acc = tl.zeros([D], tl.float32) * alpha + tl.sum(p[:, None] * v.to(tl.float32), 0)
            base = (row * tl.num_programs(1) + head) * chunks
            tl.store(Mo + base + chunk + tl.arange(0, 1), m_new)
            tl.store(Lo + base + chunk + tl.arange(0, 1), l_sum)
            tl.store(Ao + (base + chunk) * D + d, acc)
            tl.debug_barrier()
            done = tl.atomic_add(Count + row * tl.num_programs(1) + head, 1, sem="acq_rel")
            if done == used - 1:
                m = tl.full([1], float("-inf"), tl.float32)
                for c in range(0, used):
                    m = tl.maximum(m, tl.load(Mo + base + c + tl.arange(0, 1), cache_modifier=".cg"))
                l_sum = tl.zeros([1], tl.float32)
                acc = tl.zeros([D], tl.float32)
                for c in range(0, used):
                    mc = tl.load(Mo + base + c + tl.arange(0, 1), cache_modifier=".cg")
                    w = tl.where(mc == float("-inf"), 0.0, tl.exp(mc - m))
                    l_sum += w * tl.load(Lo + base + c + tl.arange(0, 1), cache_modifier=".cg")
                    acc += w * tl.load(Ao + (base + c) * D + d, cache_modifier=".cg")
                tl.store(Out + row * so_b + head * so_h + d, (acc / l_sum).to(Out.dtype.element_ty))
                tl.store(Count + row * tl.num_programs(1) + head, 0)

    @triton.jit
    def write(K, V, Kn, Vn, At, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, skn_b, skn_h, svn_b, svn_h, D: tl.constexpr):
        row = tl.program_id(0)
        head = tl.program_id(1)
        d = tl.arange(0, D)
        col = tl.load(At + row)
        tl.store(K + row * sk_b + head * sk_h + col * sk_n + d, tl.load(Kn + row * skn_b + head * skn_h + d))
        tl.store(V + row * sv_b + head * sv_h + col * sv_n + d, tl.load(Vn + row * svn_b + head * svn_h + d))

    @triton.jit
    def write_blocks(
        K, V, Kn, Vn, At, Tables, sk_blk, sk_h, sk_n, sv_blk, sv_h, sv_n, skn_b, skn_h, svn_b, svn_h, st_b,
        D: tl.constexpr, BLOCK_TOKENS: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0)
        head = tl.program_id(1)
        d = tl.arange(0, D)
        col = tl.load(At + row)
        block = tl.load(Tables + row * st_b + col // BLOCK_TOKENS)
        slot = col % BLOCK_TOKENS
        k = tl.load(Kn + row * skn_b + head * skn_h + d)
        v = tl.load(Vn + row * svn_b + head * svn_h + d)
        tl.store(K + block * sk_blk + head * sk_h + slot * sk_n + d, k)
        tl.store(V + block * sv_blk + head * sv_h + slot * sv_n + d, v)

    return partial, combine, write, attend, attend_blocks, write_blocks


def _get():
    global _kernels
    if _kernels is None:
        _kernels = _build()
    return _kernels


def write_kv(keys: torch.Tensor, values: torch.Tensor, new_keys: torch.Tensor, new_values: torch.Tensor,
             columns: torch.Tensor) -> None:  # fmt: skip
    """Each row's new key and value ([rows, kv_heads, 1, d]) into the cache ([rows, kv_heads, columns, d]) at
    that row's column `columns[row]`: one kernel for both, where two scatters were two launches a layer."""
    write = _get()[2]
    rows, kv_heads, _, d = new_keys.shape
    write[(rows, kv_heads)](
        keys, values, new_keys, new_values, columns,
        keys.stride(0), keys.stride(1), keys.stride(2), values.stride(0), values.stride(1), values.stride(2),
        new_keys.stride(0), new_keys.stride(1), new_values.stride(0), new_values.stride(1), D=d,
    )  # fmt: skip


def decode_attention(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    bias: torch.Tensor,
    lengths: torch.Tensor,
    scale: float,
    columns: int | None = None,
    out: torch.Tensor | None = None,
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """q [rows, heads, 1, d]; keys/values [rows, kv_heads, all columns, d] (the whole cache rows); bias
    [rows, 1, 1, all columns] additive; lengths [rows] (columns attended per row, none past `columns`: the
    view of the step, so no program is started for the columns beyond it). Returns [rows, heads, 1, d], written
    into the first rows of `out` when given (its other rows are left as they are). `counts`: int32 zeros, at
    least rows x heads, that the one-kernel version counts finished chunks in and leaves zero again; the
    engine keeps one of its own (calls sharing it must not overlap), else a fresh one is made per call."""
    partial, combine, _, attend, *_ = _get()
    rows, heads, _, d = q.shape
    kv_heads = keys.shape[1]
    chunks = -(-(columns or keys.shape[2]) // CHUNK)
    f = {"dtype": torch.float32, "device": q.device}
    m = torch.empty(rows * heads * chunks, **f)
    l_sum = torch.empty(rows * heads * chunks, **f)
    acc = torch.empty(rows * heads * chunks * d, **f)
    out = torch.empty_like(q) if out is None else out
    if ONE_KERNEL:
        attend[(rows, heads, chunks)](
            q, keys, values, bias, lengths, m, l_sum, acc, out,
            torch.zeros(rows * heads, dtype=torch.int32, device=q.device) if counts is None else counts,
            q.stride(0), q.stride(1), keys.stride(0), keys.stride(1), keys.stride(2),
            values.stride(0), values.stride(1), values.stride(2), bias.stride(0), out.stride(0), out.stride(1),
            chunks, scale, GROUPS=heads // kv_heads, D=d, CHUNK=CHUNK, num_warps=WARPS,
        )  # fmt: skip
        return out[:rows]
    partial[(rows, heads, chunks)](
        q, keys, values, bias, lengths, m, l_sum, acc,
        q.stride(0), q.stride(1), keys.stride(0), keys.stride(1), keys.stride(2),
        values.stride(0), values.stride(1), values.stride(2), bias.stride(0), chunks, scale,
        GROUPS=heads // kv_heads, D=d, CHUNK=CHUNK, BLOCK=BLOCK, num_warps=WARPS,
    )  # fmt: skip
    combine[(rows, heads)](m, l_sum, acc, out, lengths, out.stride(0), out.stride(1), chunks, D=d, CHUNK=CHUNK)
    return out[:rows]


def write_kv_blocks(keys: torch.Tensor, values: torch.Tensor, new_keys: torch.Tensor, new_values: torch.Tensor,
                    columns: torch.Tensor, tables: torch.Tensor) -> None:  # fmt: skip
    """Each row's new key and value ([rows, kv_heads, 1, d]) into the pool ([blocks, kv_heads, block tokens,
    d]) at its column `columns[row]`, that is slot column % block tokens of block tables[row, column // block
    tokens]: one kernel for both, as `write_kv` for the rows layout."""
    write_blocks = _get()[5]
    rows, kv_heads, _, d = new_keys.shape
    write_blocks[(rows, kv_heads)](
        keys, values, new_keys, new_values, columns, tables,
        keys.stride(0), keys.stride(1), keys.stride(2), values.stride(0), values.stride(1), values.stride(2),
        new_keys.stride(0), new_keys.stride(1), new_values.stride(0), new_values.stride(1), tables.stride(0),
        D=d, BLOCK_TOKENS=keys.shape[2],
    )  # fmt: skip


def decode_attention_blocks(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    tables: torch.Tensor,
    bias: torch.Tensor,
    lengths: torch.Tensor,
    scale: float,
    columns: int,
    out: torch.Tensor | None = None,
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """`decode_attention` reading the blocks layout through each row's block table: keys/values the pool
    ([blocks, kv_heads, block tokens, d]), tables [rows, blocks a row] (long), the rest as there. No copy of
    the attended blocks is made; the result is the same for a row alone or in any batch."""
    attend_blocks = _get()[4]
    rows, heads, _, d = q.shape
    kv_heads, block_tokens = keys.shape[1], keys.shape[2]
    chunks = -(-columns // CHUNK)
    f = {"dtype": torch.float32, "device": q.device}
    m = torch.empty(rows * heads * chunks, **f)
    l_sum = torch.empty(rows * heads * chunks, **f)
    acc = torch.empty(rows * heads * chunks * d, **f)
    out = torch.empty_like(q) if out is None else out
    attend_blocks[(rows, heads, chunks)](
        q, keys, values, tables, bias, lengths, m, l_sum, acc, out,
        torch.zeros(rows * heads, dtype=torch.int32, device=q.device) if counts is None else counts,
        q.stride(0), q.stride(1), keys.stride(0), keys.stride(1), keys.stride(2),
        values.stride(0), values.stride(1), values.stride(2), tables.stride(0), bias.stride(0),
        out.stride(0), out.stride(1), chunks, scale,
        GROUPS=heads // kv_heads, D=d, CHUNK=CHUNK, BLOCK_TOKENS=block_tokens, num_warps=WARPS,
    )  # fmt: skip
    return out[:rows]
