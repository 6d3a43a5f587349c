"""Where one decode step of the generation service spends its time: the CUDA kernels of N steps at batch 1
(and at 16 rows), from torch.profiler, as a table; and the step with SDPA in place of rp_eval's batch-invariant
attention, for comparison (not invariant: for measuring only).

    python benchmarks/profile_step.py [--shape llama2-7b] [--steps 50] [--out FILE]
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="llama2-7b")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rows", type=int, default=None, help="the KV cache's rows (default: the service's plan)")
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
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
