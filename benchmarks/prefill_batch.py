"""Whether chat prefills that arrive together could run faster, batched or side by side, without changing any
row's numbers: the question behind the serving benchmark's first-token p95 at 16 streams.

    python benchmarks/prefill_batch.py [--shape llama2-7b] [--tokens 512] [--burst 16] [--out FILE]

1. Matrix products: is row i of `x[:m] @ w.T` bit-equal for every m (the 7B layer shapes, bf16)?
2. The whole prefill (rp_eval's fused layers, compiled for any length, as the service runs them): are the logits
   and keys/values of prompt i bit-equal alone and in a batch of 2..burst prompts (and the first two rows of
   every batch equal to a batch of two), with the causal mask given as a tensor and with SDPA's own causal flag?
3. Time for a burst of `burst` prompts: one after another as the service prefills today (a CUDA graph each); on
   two engines replayed side by side on two CUDA streams; the same two with the functions compiled for this width
   alone; and batched in groups of 1, 4, 8 and `burst` without graphs (functions compiled for each shape).

CUDA only. Writes JSON lines to --out and prints them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.decode import build, mean_seconds  # noqa: E402
from rp_eval.chat.engine import StaticEngine, _PrefillKV  # noqa: E402


def seconds(fn, repeats: int = 5) -> float:
    return mean_seconds(fn, repeats)


def gemm_invariance(model, tokens: int) -> list[dict]:
    c = model.config
    h, i = c.hidden_size, c.intermediate_size
    kv = (c.num_key_value_heads or c.num_attention_heads) * (h // c.num_attention_heads)
    out = []
    g = torch.Generator(device="cuda").manual_seed(1)
    for n, k in ((h + 2 * kv, h), (h, h), (2 * i, h), (h, i)):
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=g) * 0.02
        x = torch.randn(16 * tokens, k, device="cuda", dtype=torch.bfloat16, generator=g)
        alone = [F.linear(x[j * tokens : (j + 1) * tokens], w) for j in range(2)]
        differ = {}
        for m in (1, 2, 4, 8, 16):
            y = F.linear(x[: m * tokens], w)
            differ[m] = int((y[:tokens] != alone[0]).any()) + int(
                m > 1 and bool((y[tokens : 2 * tokens] != alone[1]).any())
            )
        out.append({"gemm": f"[{tokens}*m x {k}] x [{k} x {n}]", "blocks_differing_by_m": differ})
    return out


def lanes(model, engine, listed, args, label: str) -> list[dict]:
    """The burst on two engines (own rows, own graph pool) replayed side by side on two CUDA streams; checks that
    each prompt's logits equal the one-engine result."""
    other = StaticEngine(model, rows=args.burst, columns=engine.columns)
    other.fused.prefill_fns = engine.fused.prefill_fns
    other._pool = torch.cuda.graph_pool_handle()
    other._capture_prefill(args.tokens)
    streams = [torch.cuda.Stream(), torch.cuda.Stream()]
    reference = [engine.prefill(r, listed[r]).float().cpu() for r in range(args.burst)]
    for r in range(args.burst):
        engine.release(r)
    got = [None] * args.burst

    def two_lanes():
        for s in streams:
            s.wait_stream(torch.cuda.current_stream())
        for r in range(args.burst):
            with torch.cuda.stream(streams[r % 2]):
                got[r] = (engine, other)[r % 2].prefill(r, listed[r])
        for s in streams:
            torch.cuda.current_stream().wait_stream(s)
        [int(x.argmax()) for x in got]
        for r in range(args.burst):
            (engine, other)[r % 2].release(r)

    t = seconds(two_lanes)
    same = sum(bool((got[r].float().cpu() == reference[r]).all()) for r in range(args.burst))
    return [{"burst": f"two engines on two streams, graphs ({label})", "ms": round(t * 1000, 1), "logits_equal": same}]


def run(args) -> list[dict]:
    model = build(args.shape, "cuda", torch.bfloat16)
    engine = StaticEngine(model, rows=args.burst, columns=1024)
    fused = engine.fused
    c = model.config
    kvh, d = engine.kv_heads, engine.head_dim
    lines = gemm_invariance(model, args.tokens)
    g = torch.Generator().manual_seed(5)
    prompts = torch.randint(3, c.vocab_size, (args.burst, args.tokens), generator=g).cuda()

    def scratch(n):
        shape = (n, kvh, args.tokens, d)
        kw = {"dtype": engine.dtype, "device": "cuda"}
        return [torch.empty(shape, **kw) for _ in range(engine.layers)], [
            torch.empty(shape, **kw) for _ in range(engine.layers)
        ]

    def prefill(ids, causal_flag: bool, kv=None):
        n = ids.shape[0]
        valid = torch.ones_like(ids)
        positions, mask = engine._masks(valid, engine.min, engine.dtype)
        keys, values = kv or scratch(n)
        logits = fused(ids, positions, _PrefillKV(keys, values, args.tokens), None if causal_flag else mask)
        return logits, keys, values

    with torch.inference_mode():
        for causal_flag in (False, True):
            solo = [prefill(prompts[i : i + 1], causal_flag) for i in range(args.burst)]
            pair = prefill(prompts[:2], causal_flag)
            for n in (2, 4, 8, args.burst):
                logits, keys, values = prefill(prompts[:n], causal_flag)

                def equal(i, other, j, logits=logits, keys=keys, values=values):
                    return bool((logits[i] == other[0][j]).all()) and all(
                        bool((keys[layer][i] == other[1][layer][j]).all())
                        and bool((values[layer][i] == other[2][layer][j]).all())
                        for layer in range(engine.layers)
                    )

                line = {"invariance": f"batch of {n}", "causal_flag": causal_flag,
                        "rows_equal_to_alone": sum(equal(i, solo[i], 0) for i in range(n)),
                        "first_two_equal_to_a_batch_of_two": sum(equal(i, pair, i) for i in range(2)),
                        "logits_max_abs_diff_to_alone": float((logits[0] - solo[0][0][0]).abs().max()),
                        "rows": n}  # fmt: skip
                lines.append(line)
                print(json.dumps(line), flush=True)
            del solo

        # today's path: one graph-replayed prefill per prompt
        engine._pool = torch.cuda.graph_pool_handle()
        engine._capture_prefill(args.tokens)
        listed = prompts.tolist()

        def one_by_one():
            firsts = []
            for r in range(args.burst):
                firsts.append(int(engine.prefill(r, listed[r]).argmax()))
            for r in range(args.burst):
                engine.release(r)

        t = seconds(one_by_one)
        lines.append({"burst": "one at a time, graphs (today)", "ms": round(t * 1000, 1)})
        lines += lanes(model, engine, listed, args, "dynamic")
        from rp_eval.chat.fused import attention_in, attention_out_mlp, final

        start = time.perf_counter()
        fused.prefill_fns = tuple(
            torch.compile(f, fullgraph=True, dynamic=False) for f in (attention_in, attention_out_mlp, final)
        )
        engine._capture_prefill(args.tokens)
        lines.append({"static_compile_and_capture_s": round(time.perf_counter() - start, 1)})
        lines.append(
            {"burst": "one at a time, graphs, compiled for this width", "ms": round(seconds(one_by_one) * 1000, 1)}
        )
        lines += lanes(model, engine, listed, args, "static")
        for line in lines[-4:]:
            print(json.dumps(line), flush=True)
        kv = scratch(args.burst)
        for causal_flag in (False, True):
            for group in (1, 4, 8, args.burst):

                def grouped(group=group, causal_flag=causal_flag):
                    for at in range(0, args.burst, group):
                        part = [k[at : at + group] for k in kv[0]], [v[at : at + group] for v in kv[1]]
                        logits = prefill(prompts[at : at + group], causal_flag, part)[0]
                        logits.argmax(-1).tolist()

                t = seconds(grouped)
                lines.append({"burst": f"groups of {group}, no graphs, compiled for each shape", "causal_flag": causal_flag,
                              "ms": round(t * 1000, 1)})  # fmt: skip
                print(json.dumps(lines[-1]), flush=True)
        flop = 2 * sum(p.numel() for p in model.parameters()) * args.tokens * args.burst
        lines.append({"burst_tflop": round(flop / 1e12, 1)})
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="llama2-7b")
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--burst", type=int, default=16)
    p.add_argument("--out", default="prefill-batch.jsonl")
    args = p.parse_args()
    lines = run(args)
    Path(args.out).write_text("".join(json.dumps(line) + "\n" for line in lines))
    for line in lines:
        print(json.dumps(line))


if __name__ == "__main__":
    main()
