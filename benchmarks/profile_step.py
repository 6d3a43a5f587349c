"""Where one decode step of the generation service spends its time: the CUDA kernels of N steps at batch 1
(and at 16 rows), from torch.profiler, as a table; and the step with SDPA in place of rp_eval's batch-invariant
attention, for comparison (not invariant: for measuring only). With --prefill, the same for one chat's prefill
(512 tokens, the serving benchmark's prompt): its time with and without the first token read back, a burst of 16
back to back (what 16 raters starting at once wait for), its TFLOP/s beside a bare matrix product of the same
rows, and its kernels.

    python benchmarks/profile_step.py [--shape llama2-7b] [--steps 50] [--prefill] [--static-prefill] [--out FILE]

`--static-prefill` then compiles the prefill's functions for the 512-token width alone (the service compiles
them once for every length) and measures the same again: what the dynamic length costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.decode import build, word_tokenizer  # noqa: E402
from rp_eval.chat.service import GenerationService, own  # noqa: E402


def step_ms(engine, attend: int, steps: int) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        engine.step(attend)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps * 1000


def prefill_profile(model, engine, tokens: int = 512, burst: int = 16) -> list[str]:
    """One chat's prefill as the service runs it (a graph where the load captured one), measured three ways."""
    prompt = list(range(3, 3 + tokens))
    lines = []

    def sync() -> None:
        if engine.device.type == "cuda":
            torch.cuda.synchronize()

    def seconds(fn, repeats: int = 10) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        return (time.perf_counter() - start) / repeats

    def one(read: bool):
        logits = engine.prefill(0, prompt)
        if read:  # the service reads each first token back before placing the row
            int(logits.argmax())
        engine.release(0)

    def many():
        firsts = [engine.prefill(r, prompt).argmax(-1) for r in range(burst)]
        torch.stack(firsts).tolist()
        for r in range(burst):
            engine.release(r)

    with torch.inference_mode():
        one(True)
        graph = "graph" if engine.padded(tokens) in engine.prefills else "no graph"
        for read in (False, True):
            ms = seconds(lambda read=read: one(read)) * 1000
            lines.append(
                f"one {tokens}-token prefill ({graph}), first token {'read' if read else 'not read'}: {ms:.2f} ms"
            )
        if engine.rows >= burst:
            ms = seconds(many, 3) * 1000
            lines.append(f"{burst} prefills back to back, first tokens read once at the end: {ms:.1f} ms")
        flop = 2 * sum(p.numel() for p in model.parameters()) * tokens
        s = seconds(lambda: one(False))
        a = torch.randn(tokens, model.config.hidden_size, device=engine.device, dtype=engine.dtype)
        w = torch.randn(2 * model.config.intermediate_size, model.config.hidden_size, device=a.device, dtype=a.dtype)
        bare = seconds(lambda: torch.nn.functional.linear(a, w), 20)
        bare_tflops = 2 * a.shape[0] * a.shape[1] * w.shape[0] / bare / 1e12
        lines.append(f"prefill {flop / s / 1e12:.0f} TFLOP/s; bare matmul [{tokens}x{a.shape[1]}] x "
                     f"[{a.shape[1]}x{w.shape[0]}] {bare_tflops:.0f} TFLOP/s")  # fmt: skip
        cuda = engine.device.type == "cuda"
        kind = torch.profiler.ProfilerActivity.CUDA if cuda else torch.profiler.ProfilerActivity.CPU
        with torch.profiler.profile(activities=[kind]) as prof:
            for _ in range(5):
                one(False)
            sync()
        lines.append(f"== {tokens}-token prefill, by {'CUDA' if cuda else 'CPU'} time (5 prefills)")
        lines.append(prof.key_averages().table(sort_by="cuda_time_total" if cuda else "cpu_time_total", row_limit=25))
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="llama2-7b")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rows", type=int, default=None, help="the KV cache's rows (default: the service's plan)")
    p.add_argument("--prefill", action="store_true", help="profile one 512-token chat prefill too")
    p.add_argument("--static-prefill", action="store_true", help="and with the prefill compiled for 512 tokens alone")
    p.add_argument("--out", default="profile-step.txt")
    args = p.parse_args()
    model = build(args.shape, "cuda", torch.bfloat16)
    word_tokenizer(model.config.vocab_size)
    service = GenerationService(model, rows=args.rows)
    own(model, service)
    service.warm_up()
    engine = service.static_engine()
    lines = []
    with torch.inference_mode():
        for rows in (1, 16) if engine.rows >= 16 else (1,):
            for r in range(rows):
                engine.prefill(r, list(range(3, 515)))
            attend = 1 << (rows - 1).bit_length()
            engine.step(attend)
            ms = step_ms(engine, attend, args.steps)
            lines.append(f"{rows} rows of {engine.rows}, graphs, invariant attention: {ms:.3f} ms a step")
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                step_ms(engine, attend, 10)
            lines.append(prof.key_averages().table(sort_by="cuda_time_total", row_limit=15))
            engine.fused.invariant = False  # SDPA instead (eager, no graphs): what the attention costs
            graphs, engine.graphs = engine.graphs, {}
            lines.append(f"{rows} rows, no graphs, invariant attention off: {step_ms(engine, attend, 10):.3f} ms")
            engine.fused.invariant = True
            lines.append(f"{rows} rows, no graphs, invariant attention on: {step_ms(engine, attend, 10):.3f} ms")
            engine.graphs = graphs
            for r in range(rows):
                engine.release(r)
    if args.prefill:
        lines += prefill_profile(model, engine)
    if args.static_prefill:  # the prefill functions compiled for the 512-token width alone (dynamic=False)
        from rp_eval.chat.fused import attention_in, attention_out_mlp, final

        fns = (attention_in, attention_out_mlp, final)
        engine.fused.prefill_fns = tuple(torch.compile(f, fullgraph=True, dynamic=False) for f in fns)
        start = time.perf_counter()
        with torch.inference_mode():
            engine._capture_prefill(512)
        lines.append(f"== static prefill: compiled and captured for one width in {time.perf_counter() - start:.1f} s")
        lines += prefill_profile(model, engine)
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
