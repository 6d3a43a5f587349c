"""The decode attention kernel over the blocks layout (rp_eval/chat/attention.py, Triton) on the CPU, through
Triton's interpreter: it reads each row's blocks through its table and gives the numbers of the rows-layout
kernel over the same keys gathered in order, and a row's result alone equals its result in a batch.

Triton is not in the CI requirements: this runs where it is installed, with TRITON_INTERPRET=1 set before
Python starts (`pip install --target /tmp/triton triton`, then
`PYTHONPATH=/tmp/triton TRITON_INTERPRET=1 pytest tests/chat/test_attention_blocks.py`); on a GPU the suite in
tests/gpu/ runs it compiled."""

from __future__ import annotations

import os

import pytest
import torch

triton = pytest.importorskip("triton")
pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
    reason="Triton kernels run on a GPU, or on the CPU with TRITON_INTERPRET=1",
)


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_the_block_table_kernel_gives_the_gathered_rows_numbers_and_ignores_its_neighbours(kv_heads):
    from rp_eval.chat.attention import decode_attention, decode_attention_blocks

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    rows, heads, d, b, per_row = 3, 4, 16, 16, 8  # rows of up to 128 columns, 16-token blocks
    pool_blocks = rows * per_row + 1
    q = torch.randn(rows, heads, 1, d, device=device)
    pool_k = torch.randn(pool_blocks, kv_heads, b, d, device=device)
    pool_v = torch.randn_like(pool_k)
    # each row's blocks scattered over the pool, in no order; unused entries name the spare (last) block
    order = torch.randperm(pool_blocks - 1, device=device)
    tables = order.view(rows, per_row).clone()
    lengths = torch.tensor([5, 70, 128], device=device)
    for r in range(rows):
        tables[r, -(-int(lengths[r]) // b) :] = pool_blocks - 1
    bias = torch.full((rows, 1, 1, per_row * b), torch.finfo(torch.float32).min, device=device)
    for r in range(rows):
        bias[r, 0, 0, : int(lengths[r])] = 0
    bias[1, 0, 0, 3] = torch.finfo(torch.float32).min  # a masked column inside a row
    got = decode_attention_blocks(q, pool_k, pool_v, tables, bias, lengths, d**-0.5, per_row * b)
    gathered_k = pool_k[tables].transpose(1, 2).reshape(rows, kv_heads, per_row * b, d)
    gathered_v = pool_v[tables].transpose(1, 2).reshape(rows, kv_heads, per_row * b, d)
    rows_kernel = decode_attention(q, gathered_k, gathered_v, bias, lengths, d**-0.5)
    assert torch.equal(got, rows_kernel)
    reference = torch.nn.functional.scaled_dot_product_attention(
        q, gathered_k, gathered_v, attn_mask=bias, enable_gqa=kv_heads < heads
    )
    assert torch.allclose(got, reference, atol=1e-5, rtol=1e-5)
    alone = decode_attention_blocks(q[1:2], pool_k, pool_v, tables[1:2], bias[1:2], lengths[1:2], d**-0.5, 128)
    assert torch.equal(alone, got[1:2])


def test_the_fused_blocks_step_with_the_kernel_is_batch_invariant(tiny_llama, monkeypatch):
    """The engine as CUDA runs it (fused step, the decode kernel reading the block tables, nothing gathered),
    here through the interpreter: three rows decoded together give each row's tokens alone, bit for bit, and
    the tokens of the same engine without the kernel (blocks gathered, SDPA)."""
    from transformers import AutoModelForCausalLM

    from rp_eval.chat import engine as engine_module
    from rp_eval.chat import fused as fused_module
    from rp_eval.chat.engine import StaticEngine

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    prompts = [list(range(5, 5 + n)) for n in (3, 17, 40)]

    def decode(engine, which, steps=12):
        tokens = {r: [] for r in which}
        logits = {}
        with torch.inference_mode():
            for r in which:
                table = [8 * r + k for k in range(-(-(len(prompts[r]) + steps + 2) // 16))]
                tokens[r].append(int(engine.prefill(r, prompts[r], 0, table).argmax(-1)))
                engine.ids[r, 0] = tokens[r][-1]
            for _ in range(steps):
                out = engine.step(4)
                for r in which:
                    logits[r] = out[r].clone()
                    tokens[r].append(int(out[r].argmax()))
                    engine.ids[r, 0] = tokens[r][-1]
            for r in which:
                engine.release(r)
        return tokens, logits

    plain = StaticEngine(model, rows=4, columns=128, kv_layout="blocks", fused=True)
    expected, _ = decode(plain, [0, 1, 2])
    monkeypatch.setattr(engine_module, "available", lambda device: True)
    monkeypatch.setattr(fused_module, "available", lambda device: True)
    engine = StaticEngine(model, rows=4, columns=128, kv_layout="blocks", fused=True)
    assert engine.kernels and engine.fused.invariant
    together, logits = decode(engine, [0, 1, 2])
    assert together == expected
    for r in range(3):
        alone, alone_logits = decode(engine, [r])
        assert alone[r] == together[r] and torch.equal(alone_logits[r], logits[r])


def test_the_block_table_write_puts_each_rows_key_and_value_in_its_block_and_slot():
    from rp_eval.chat.attention import write_kv_blocks

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(2)
    rows, kv_heads, d, b = 4, 2, 16, 16
    keys = torch.zeros(9, kv_heads, b, d, device=device)
    values = torch.zeros_like(keys)
    new_keys, new_values = (
        torch.randn(rows, kv_heads, 1, d, device=device),
        torch.randn(rows, kv_heads, 1, d, device=device),
    )
    tables = torch.tensor([[3, 5], [0, 1], [7, 2], [8, 8]], device=device)
    at = torch.tensor([17, 0, 31, 4], device=device)  # block 5 slot 1; block 0 slot 0; block 2 slot 15; block 8 slot 4
    write_kv_blocks(keys, values, new_keys, new_values, at, tables)
    expected_k, expected_v = torch.zeros_like(keys), torch.zeros_like(values)
    for r, (block, slot) in enumerate([(5, 1), (0, 0), (2, 15), (8, 4)]):
        expected_k[block, :, slot] = new_keys[r, :, 0]
        expected_v[block, :, slot] = new_values[r, :, 0]
    assert torch.equal(keys, expected_k) and torch.equal(values, expected_v)
