"""Building one candidate in memory vs mergekit's run_merge on the same recipe (TIES and DARE-TIES, density 0.5).

GPU (the lead's H100): two 7B Llama-2-shaped random-weight sources plus a base, bf16, on CUDA:
    python benchmarks/evolve.py
CPU check with tiny models:
    python benchmarks/evolve.py --tiny
Prints one JSON line per method: in-memory build seconds (median of --repeats), mergekit seconds, peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rp_eval.evolve.genome import Genome, decode, to_recipe  # noqa: E402
from rp_eval.evolve.inmemory import Resident  # noqa: E402

SEVEN_B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32000)  # fmt: skip
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=4, vocab_size=1000)  # fmt: skip


def make_sources(root: Path, shape: dict, dtype: torch.dtype) -> dict[str, str]:
    from transformers import LlamaConfig, LlamaForCausalLM

    out = {}
    for i, name in enumerate(("base", "a", "b")):
        torch.manual_seed(i)
        with torch.device("cpu"):
            model = LlamaForCausalLM(LlamaConfig(**shape)).to(dtype)
        model.save_pretrained(root / name)
        out[name] = str(root / name)
        del model
    return out


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="tiny models on the CPU (a check that it runs)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    device = "cpu" if args.tiny else "cuda"
    dtype = torch.float32 if args.tiny else torch.bfloat16
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    with tempfile.TemporaryDirectory() as tmp:
        src = make_sources(Path(tmp), TINY if args.tiny else SEVEN_B, dtype)
        for method in ("ties", "dare_ties"):
            genome = Genome(models=[src["a"], src["b"]], base_model=src["base"], method=method,
                            dtype="float32" if args.tiny else "bfloat16")  # fmt: skip
            resident = Resident(genome, device=device, dtype=dtype, tokenizer=False)
            x = genome.x0(resident.num_layers)
            x[1::2] = 0.5  # density 0.5
            d = decode(genome, resident.num_layers, x)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            times = []
            for i in range(args.repeats):
                sync(device)
                t0 = time.perf_counter()
                resident.build(d, seed=i)
                sync(device)
                times.append(time.perf_counter() - t0)
            peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0
            del resident
            t0 = time.perf_counter()
            run_merge(MergeConfiguration.model_validate(to_recipe(d)), str(Path(tmp) / f"out-{method}"),
                      MergeOptions(device=device, quiet=True, random_seed=0))  # fmt: skip
            mk = time.perf_counter() - t0
            print(json.dumps({"method": method, "device": device, "in_memory_s": round(statistics.median(times), 3),
                              "mergekit_run_merge_s": round(mk, 2), "peak_gpu_gib": round(peak, 1)}), flush=True)  # fmt: skip
            if device == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
