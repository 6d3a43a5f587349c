"""Building one candidate in memory vs mergekit's run_merge on the same recipe (TIES and DARE-TIES, density 0.5).

GPU (the lead's H100): two 7B Llama-2-shaped random-weight sources plus a base, bf16, on CUDA:
    python benchmarks/evolve.py
CPU check with tiny models:
    python benchmarks/evolve.py --tiny
Prints one JSON line per method: in-memory build seconds (median of --repeats), mergekit seconds, peak GPU memory.

End to end (`--search N`): a DARE-TIES search of N candidates on the same kind of sources (with the demo-corpus
tokenizer of benchmarks/eval_runner.py, so replies decode), 64 dev items x 64 new tokens per candidate, in this
process or (`--ray-actors K`) through a pool of K Ray actors, one per GPU, each holding its own sources:
    python benchmarks/evolve.py --search 64 [--ray-actors 8]
    python benchmarks/evolve.py --tiny --search 8 --dev-items 4 --new-tokens 8 [--ray-actors 2]
Prints one JSON line: candidates per hour (steady state, after the sources are loaded), wall seconds in all,
the mean build and evaluation seconds per candidate, peak GPU memory of this process (in-process only).

Worker processes on one machine (`--workers K`, rp_eval.evolve.pool.LocalPool, one per GPU, no Ray) with
`--compare`: the pool is started once (each worker loads its sources), then the same search runs with 1 worker
and with K, each as its own run from the same seed; prints one JSON line a run (candidates per hour, where the
time went per candidate: build, generation, metrics, transfer, queued; each worker's busy share) and one with
the speed-up and whether the two runs' candidates and fitness are identical:
    python benchmarks/evolve.py --search 16 --population 8 --workers 2 --compare
    python benchmarks/evolve.py --tiny --search 8 --population 4 --dev-items 4 --new-tokens 8 --workers 2 --compare
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rp_eval.evolve.genome import Genome, decode, to_recipe  # noqa: E402
from rp_eval.evolve.inmemory import Resident  # noqa: E402

SEVEN_B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32000)  # fmt: skip
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=4, vocab_size=1000)  # fmt: skip


def make_sources(root: Path, shape: dict, dtype: torch.dtype, tokenizer=None) -> dict[str, str]:
    from transformers import LlamaConfig, LlamaForCausalLM

    if tokenizer is not None:
        ids = {k: getattr(tokenizer, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
        shape = {**shape, "vocab_size": len(tokenizer), "max_position_embeddings": 4096, **ids}
    out = {}
    for i, name in enumerate(("base", "a", "b")):
        torch.manual_seed(i)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # random init of 7B: minutes on a CPU
            model = LlamaForCausalLM(LlamaConfig(**shape)).to(dtype)
        model.save_pretrained(root / name)
        if tokenizer is not None:
            tokenizer.save_pretrained(root / name)
        out[name] = str(root / name)
        del model
    return out


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def search(args, device: str, dtype: torch.dtype) -> None:
    """Candidates per hour end to end: build in memory, generate, score, store; in-process or a Ray pool."""
    from benchmarks.eval_runner import byte_bpe
    from rp_eval.evolve.pool import PoolSettings
    from rp_eval.evolve.search import SearchSettings, evolve

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RP_EVAL_HOME"] = str(Path(tmp) / "workspace")  # a store of its own (actors get it too)
        src = make_sources(Path(tmp), TINY if args.tiny else SEVEN_B, dtype, byte_bpe(1000 if args.tiny else 4000))
        genome = Genome(models=[src["a"], src["b"]], base_model=src["base"], method="dare_ties",
                        dtype="float32" if args.tiny else "bfloat16")  # fmt: skip
        settings = SearchSettings(population=args.population, budget=args.search, dev_limit=args.dev_items,
                                  max_new_tokens=args.new_tokens, test_top=0)  # fmt: skip
        pool = PoolSettings(actors=args.ray_actors) if args.ray_actors else None
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start, stamps, last = time.perf_counter(), [], None
        from rp_eval.evolve.pool import make_evaluator
        from rp_eval.evolve.search import role_play_fitness

        fitness = partial(role_play_fitness, max_new_tokens=args.new_tokens)
        recorder = Recording(make_evaluator(genome, fitness, pool, None if pool else device))
        try:
            for last in evolve(genome, settings, "bench", evaluator=recorder):
                if "candidate" in last.message:
                    stamps.append(time.perf_counter())
        finally:
            recorder.close()
        wall = time.perf_counter() - start
        from rp_eval.store import evolve as db
        from rp_eval.store import get_store

        rows = db.candidates(get_store(), db.get_run(get_store(), "bench").id)
        steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) * 3600 if len(stamps) > 1 else None
        print(json.dumps({
            "search": "ray" if pool else "in-process", "actors": args.ray_actors, "device": device,
            "candidates": len(rows), "failed": sum(r.status != "ok" for r in rows), "best": last.best,
            "candidates_per_hour": round(steady, 1) if steady else None, "wall_s": round(wall, 1),
            "first_candidate_after_s": round(stamps[0] - start, 1) if stamps else None,
            "build_s_mean": round(statistics.mean(r.build_seconds for r in rows), 3),
            "eval_s_mean": round(statistics.mean(r.eval_seconds for r in rows), 3),
            "stages": stage_means(recorder.outcomes),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if device == "cuda" and not pool else None,
        }), flush=True)  # fmt: skip


class Recording:
    """An evaluator that keeps every outcome it passes on (for the per-stage table)."""

    def __init__(self, evaluator) -> None:
        self.evaluator, self.num_layers, self.outcomes = evaluator, evaluator.num_layers, []
        self.started = None  # when the first job was given (the search's set-up before it is not the pool's)

    def map(self, jobs):
        self.started = self.started or time.perf_counter()
        for outcome in self.evaluator.map(jobs):
            self.outcomes.append(outcome)
            handed = time.perf_counter()
            yield outcome
            # the search's own work on it before it asks for the next: store the row, report progress
            outcome.stages["store"] = time.perf_counter() - handed
            if os.environ.get("RP_EVAL_BENCH_EACH"):  # one line a candidate (to see the first ones, or a drift)
                print(json.dumps({"candidate": len(self.outcomes), "worker": outcome.worker, "fitness": outcome.fitness,
                                  "build_s": round(outcome.build_seconds, 3), "eval_s": round(outcome.eval_seconds, 3),
                                  **{k: round(v, 3) for k, v in outcome.stages.items()}}), flush=True)  # fmt: skip

    def close(self) -> None:
        self.evaluator.close()


def stage_means(outcomes) -> dict:
    """Seconds per candidate by stage: the median (one-time costs, a first compile or import, land in one
    candidate and would move a mean) and, as `mean_*`, the mean."""
    ok = [o for o in outcomes if o.fitness is not None]
    keys = ("generation", "prefill", "metrics", "store", "transfer", "queued")
    values = {"build": [o.build_seconds for o in ok], "eval": [o.eval_seconds for o in ok]}
    values |= {k: [o.stages.get(k, 0.0) for o in ok] for k in keys}
    values["decode"] = [o.stages.get("generation", 0.0) - o.stages.get("prefill", 0.0) for o in ok]
    out = {f"{k}_s": round(statistics.median(v), 4) for k, v in values.items()}
    return out | {f"mean_{k}_s": round(statistics.mean(v), 4) for k, v in values.items()}


def compare(args, device: str, dtype: torch.dtype) -> None:
    """The same search through 1 worker process and through --workers, one pool started once."""
    from benchmarks.eval_runner import byte_bpe
    from rp_eval.evolve.pool import Job, LocalPool
    from rp_eval.evolve.search import SearchSettings, evolve, role_play_fitness
    from rp_eval.store import evolve as db
    from rp_eval.store import get_store

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RP_EVAL_HOME"] = str(Path(tmp) / "workspace")  # a store of its own (workers get it too)
        t0 = time.perf_counter()
        src = make_sources(Path(tmp), TINY if args.tiny else SEVEN_B, dtype, byte_bpe(1000 if args.tiny else 4000))
        genome = Genome(models=[src["a"], src["b"]], base_model=src["base"], method="dare_ties",
                        dtype="float32" if args.tiny else "bfloat16")  # fmt: skip
        settings = SearchSettings(population=args.population, budget=args.search, dev_limit=args.dev_items,
                                  max_new_tokens=args.new_tokens, test_top=0)  # fmt: skip
        t1 = time.perf_counter()
        pool = LocalPool(genome, partial(role_play_fitness, max_new_tokens=args.new_tokens), args.workers)
        print(json.dumps({"sources_written_s": round(t1 - t0, 1), "workers_ready_s": round(time.perf_counter() - t1, 1),
                          "workers": args.workers, "device": device}), flush=True)  # fmt: skip
        runs, outcomes = {}, {}
        try:
            # one unstored candidate on each worker first: a worker's first fitness pays one-time costs (kernels
            # loaded on first use) that would otherwise land inside the timed runs, unevenly
            pool.use = args.workers
            x0 = [float(v) for v in genome.x0(pool.num_layers)]
            warm = [Job(x0, 0, "dev", args.dev_items, 1) for _ in range(args.workers)]
            t2 = time.perf_counter()
            warmed = list(pool.map(warm))
            print(json.dumps({"warm_up_s": round(time.perf_counter() - t2, 1),
                              "workers_warmed": sorted({o.worker for o in warmed})}), flush=True)  # fmt: skip
            for use in (1, args.workers):
                pool.use, pool.busy = use, [0.0] * len(pool.busy)
                recorder, stamps = Recording(pool), []
                start = time.perf_counter()
                for event in evolve(genome, settings, f"workers-{use}", evaluator=recorder):
                    if "candidate" in event.message:
                        stamps.append(time.perf_counter())
                end = time.perf_counter()
                wall, searching = end - start, end - recorder.started
                rows = db.candidates(get_store(), db.get_run(get_store(), f"workers-{use}").id)
                runs[use], outcomes[use] = rows, recorder.outcomes
                steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) * 3600 if len(stamps) > 1 else None
                print(json.dumps({
                    "workers": use, "candidates": len(rows), "failed": sum(r.status != "ok" for r in rows),
                    "candidates_per_hour": round(len(rows) / searching * 3600, 1), "search_s": round(searching, 1),
                    "steady_candidates_per_hour": round(steady, 1) if steady else None, "wall_s": round(wall, 1),
                    **stage_means(recorder.outcomes),
                    "worker_busy_share": [round(b / searching, 3) for b in pool.busy[:use]],
                }), flush=True)  # fmt: skip
        finally:
            pool.close()
        one, many = runs[1], runs[args.workers]
        same = [(r.genotype, r.fitness) for r in one] == [(r.genotype, r.fitness) for r in many]
        first = next((i for i, (a, b) in enumerate(zip(one, many, strict=True)) if (a.genotype, a.fitness) != (b.genotype, b.fitness)),
                     None)  # fmt: skip
        where = None
        if first is not None:  # the first candidate that differs, and which worker made each
            a, b = one[first], many[first]
            where = {"generation": a.generation, "index": a.index, "same_genotype": a.genotype == b.genotype,
                     "fitness": [a.fitness, b.fitness],
                     "worker": [outcomes[1][first].worker, outcomes[args.workers][first].worker]}  # fmt: skip
        print(json.dumps({"identical_candidates_and_fitness": same, "workers": args.workers,
                          "first_difference": where}), flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="tiny models on the CPU (a check that it runs)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--search", type=int, default=0, help="run a search of this many candidates end to end instead")
    ap.add_argument("--ray-actors", type=int, default=0, help="--search through a pool of this many Ray actors")
    ap.add_argument("--workers", type=int, default=2, help="--compare: worker processes (one per GPU)")
    ap.add_argument("--compare", action="store_true", help="--search with 1 worker process, then --workers")
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--dev-items", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    device = "cpu" if args.tiny else "cuda"
    dtype = torch.float32 if args.tiny else torch.bfloat16
    if args.search and args.compare:
        return compare(args, device, dtype)
    if args.search:
        return search(args, device, dtype)
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
            shutil.rmtree(Path(tmp) / f"out-{method}")  # three 7B sources and two outputs do not fit a 64 GB disk
            print(json.dumps({"method": method, "device": device, "in_memory_s": round(statistics.median(times), 3),
                              "mergekit_run_merge_s": round(mk, 2), "peak_gpu_gib": round(peak, 1)}), flush=True)  # fmt: skip
            if device == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
