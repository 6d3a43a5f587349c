"""Where a fitness batch of the evolutionary search spends its time, on the GPU: the dev subset's prompts
(64 items, the demo-corpus tokenizer, as `benchmarks/evolve.py --search` runs them) through the resident's
generation service (64 rows × 2,048 columns), without writing any source to disk.

Prints: the prompts' token lengths; `fitness_rows` split by stage (three runs); the engine's batch prefill
alone and its achieved TFLOP/s beside a bare matrix product of the same size; the 64-row decode step alone;
torch.profiler tables of one fitness batch (CUDA time and host time) and of the decode step.

    python benchmarks/profile_fitness.py [--items 64] [--new-tokens 64] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.eval_runner import byte_bpe  # noqa: E402
from benchmarks.evolve import SEVEN_B  # noqa: E402


def timed(fn, repeats: int = 3) -> float:
    """Median seconds of `fn()` (the GPU's work included)."""
    out = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--out", default="profile-fitness.txt")
    args = p.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM

    from rp_eval.chat.formats import get_format
    from rp_eval.chat.generate import GenerationSettings, _prompt
    from rp_eval.chat.service import GenerationService, own
    from rp_eval.evaluate.fitness import fitness_rows
    from rp_eval.evaluate.task import load_task

    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    tokenizer = byte_bpe(4000)
    ids = {k: getattr(tokenizer, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    config = LlamaConfig(**{**SEVEN_B, "vocab_size": len(tokenizer), "max_position_embeddings": 4096, **ids})
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    service = GenerationService(model, rows=64, columns=2048)
    own(model, service)
    say(f"warm-up {service.warm_up():.1f} s")
    engine = service.static_engine()
    fmt = get_format("llama2")
    gen = GenerationSettings(max_new_tokens=args.new_tokens, temperature=0.0)

    task = load_task()
    items = task.select("dev", args.items, 0)
    encoded = [_prompt(model, tokenizer, fmt, i.messages(task.personas[i.persona], "あなた"), gen)[1] for i in items]
    widths = [len(e) for e in encoded]
    width = max(widths)
    say(f"prompts: {len(encoded)}, tokens min/mean/max {min(widths)}/{statistics.mean(widths):.0f}/{width}, "
        f"real {sum(widths)}, padded {width * len(encoded)}")  # fmt: skip

    for run in range(3):
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        fitness_rows(model, tokenizer, fmt, limit=args.items, batch_size=64, generation=gen, seconds=seconds)
        seconds = {k: round(v, 3) for k, v in seconds.items()}
        say(f"fitness_rows run {run}: {time.perf_counter() - start:.3f} s {seconds}")

    def prefill():
        with torch.inference_mode():
            engine.prefill_rows(0, encoded)
            for r in range(len(encoded)):
                engine.release(r)

    flop = 2 * sum(p.numel() for p in model.parameters()) * width * len(encoded)
    for share in (False, True):

        def either(share=share):
            with torch.inference_mode():
                engine.prefill_rows(0, encoded, share=share)
                for r in range(len(encoded)):
                    engine.release(r)

        s = timed(either)
        say(f"engine.prefill_rows alone, shared beginnings {'on' if share else 'off'}: {s * 1000:.1f} ms "
            f"({flop / s / 1e12:.0f} TFLOP/s counted over the plain way's padded tokens)")  # fmt: skip
    a = torch.randn(width * len(encoded), 4096, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(11008 * 2, 4096, device="cuda", dtype=torch.bfloat16)
    s = timed(partial(torch.nn.functional.linear, a, w), 5)
    tflops = 2 * a.shape[0] * 4096 * w.shape[0] / s / 1e12
    say(f"bare matmul [{a.shape[0]}x4096] x [4096x{w.shape[0]}]: {tflops:.0f} TFLOP/s")
    del a, w

    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    ) as prof:
        fitness_rows(model, tokenizer, fmt, limit=args.items, batch_size=64, generation=gen)
        torch.cuda.synchronize()
    say("== one fitness batch, by CUDA time")
    say(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))
    say("== one fitness batch, by host time")
    say(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        prefill()
    say("== engine.prefill_rows (shared beginnings), by CUDA time")
    say(prof.key_averages().table(sort_by="cuda_time_total", row_limit=20))

    with torch.inference_mode():
        engine.prefill_rows(0, encoded)
        rows = len(encoded)
        attend = 1 << (rows - 1).bit_length()
        engine.step(attend)
        s = timed(lambda: [engine.step(attend) for _ in range(20)], 3) / 20
        say(f"decode step at {rows} rows (graph): {s * 1000:.2f} ms")
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                engine.step(attend)
            torch.cuda.synchronize()
        say(f"== decode step at {rows} rows, by CUDA time (10 steps)")
        say(prof.key_averages().table(sort_by="cuda_time_total", row_limit=20))
        from rp_eval.chat import attention

        q = torch.randn(rows, 32, 1, 128, device="cuda", dtype=torch.bfloat16)
        lengths = engine.write_at[:rows] + 1
        view = engine.view()
        warps_before = attention.WARPS
        for one in (True, False):
            attention.ONE_KERNEL = one
            for warps in (2, 4):
                attention.WARPS = warps
                for columns in (None, view):
                    s = timed(lambda columns=columns: [attention.decode_attention(
                        q, engine.keys[0][:rows], engine.values[0][:rows], engine.bias[:rows], lengths, 0.088, columns
                    ) for _ in range(50)]) / 50  # fmt: skip
                    say(f"decode attention, {rows} rows of {int(lengths.max())} columns, "
                        f"{'one kernel' if one else 'two kernels'}, {warps} warps, "
                        f"programs over {columns or engine.columns} columns: {s * 1e6:.1f} us")  # fmt: skip
        attention.WARPS, attention.ONE_KERNEL = warps_before, True
    Path(args.out).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
