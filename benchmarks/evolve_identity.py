"""Does a candidate score the same on every GPU? Where do two GPUs part ways, if they do?

One process per GPU (spawned, CUDA_VISIBLE_DEVICES set before CUDA starts, TORCHINDUCTOR_DETERMINISTIC=1 as
`LocalPool`'s workers run), each holding the same three sources and resident model. Every process builds the
same genotypes twice over and, for each, records: an integer checksum of every merged tensor (its bits summed as
int16, exact), the hash of every reply's text, and the fitness. Then the same with the shared-beginning prefill
off (`engine.SHARED_WORTH = 0`). With `--two-kernel`, every process starts again with the two-launch decode
attention (`attention.ONE_KERNEL = False`, set before the graphs are captured) and repeats the default pass.

`--same-gpu` puts every process on GPU 0, one after another (one GPU holds one process's sources), and
`--fresh-caches` gives each process empty compile caches of its own (inductor's and Triton's); without it the
processes share this machine's caches, and a process that compiles after another reads what that one chose.
Here the processes compile side by side (as LocalPool's workers did before they took turns).

Prints one JSON line a (variant, GPU) and a summary: for each variant, whether repeats on one GPU agree and
whether the GPUs agree, and the first tensor / item where they do not:
    python benchmarks/evolve_identity.py [--two-kernel]             # GPU machine with 2 or more GPUs
    python benchmarks/evolve_identity.py --same-gpu --fresh-caches --default-only   # one GPU
    python benchmarks/evolve_identity.py --tiny --processes 2       # CPU check with tiny models
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _checksums(model) -> list[int]:
    """Each parameter's bits summed as integers (exact on any device; one flipped bit changes it)."""
    import torch

    out = []
    for p in model.parameters():
        bits = p.detach().view(torch.int16) if p.element_size() == 2 else p.detach().view(torch.int32)
        out.append(int(bits.to(torch.int64).sum().item()))
    return out


def _process(index: int, gpu: int | None, genome_yaml: str, genotypes: list, args: dict, queue) -> None:
    os.environ.setdefault("TORCHINDUCTOR_DETERMINISTIC", "1")
    if args["caches"]:  # compile caches of this process alone: every kernel compiled (and any choice made) here
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = f"{args['caches']}/inductor-{index}"
        os.environ["TRITON_CACHE_DIR"] = f"{args['caches']}/triton-{index}"
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import torch

    from rp_eval.chat import attention, engine
    from rp_eval.chat.generate import GenerationSettings
    from rp_eval.evaluate.fitness import fitness_rows
    from rp_eval.evolve.genome import decode, parse_genome
    from rp_eval.evolve.inmemory import Resident

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    attention.ONE_KERNEL = not args["two_kernel"]
    genome = parse_genome(genome_yaml)
    resident = Resident(genome, device=None if gpu is not None else "cpu")
    gen = GenerationSettings(max_new_tokens=args["new_tokens"], temperature=0.0)
    variants = [("default", engine.SHARED_WORTH)] + ([] if args["two_kernel"] else [("no_shared_prefill", 0.0)])
    variants = variants[:1] if args["default_only"] else variants
    for variant, worth in variants:
        engine.SHARED_WORTH = worth
        records = []
        for repeat in range(2):
            for g, x in enumerate(genotypes):
                resident.build(decode(genome, resident.num_layers, np.asarray(x, dtype=float)), seed=g)
                resident.settle()
                rows = fitness_rows(resident.model, resident.tokenizer, resident.format, split="dev",
                                    limit=args["dev_items"], seed=0, generation=gen,
                                    batch_size=resident.batch_rows)  # fmt: skip
                texts = [zlib.crc32(r.text.encode()) for r in rows]
                fit = float(np.mean([r.combined for r in rows]))
                records.append({"repeat": repeat, "genotype": g, "fitness": fit, "weights": _checksums(resident.model),
                                "texts": texts})  # fmt: skip
        name = variant + ("+two_kernel" if args["two_kernel"] else "")
        queue.put((name, index, records))
    queue.put(None)


def run(genome_yaml: str, genotypes: list, processes: int, gpus: bool, args: dict) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    gpu = (lambda i: 0 if args["same_gpu"] else i) if gpus else (lambda i: None)
    procs = [context.Process(target=_process, args=(i, gpu(i), genome_yaml, genotypes, args, queue))
             for i in range(processes)]  # fmt: skip
    results, done = {}, 0
    for p in procs if not args["same_gpu"] else procs[:1]:
        p.start()
    while done < processes:
        try:
            message = queue.get(timeout=5)
        except Exception:  # noqa: BLE001 - queue.Empty: see whether a process died
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise SystemExit(f"a process failed (exit codes {dead}); its error is above") from None
            continue
        if message is None:
            done += 1
            if args["same_gpu"] and done < processes:  # one GPU: one process at a time, the next after it
                procs[done - 1].join()
                procs[done].start()
            continue
        name, index, records = message
        results.setdefault(name, {})[index] = records
        print(json.dumps({"variant": name, "process": index,
                          "fitness": [round(r["fitness"], 6) for r in records]}), flush=True)  # fmt: skip
    for p in procs:
        p.join()
    return results


def first_difference(a: dict, b: dict, names: list[str]) -> dict | None:
    for key in ("weights", "texts"):
        diff = [i for i, (x, y) in enumerate(zip(a[key], b[key], strict=True)) if x != y]
        if diff:
            where = names[diff[0]] if key == "weights" else f"item {diff[0]}"
            return {"in": key, "count": len(diff), "first": where, "fitness": [a["fitness"], b["fitness"]]}
    return None if a["fitness"] == b["fitness"] else {"in": "fitness", "fitness": [a["fitness"], b["fitness"]]}


def summarize(results: dict, names: list[str]) -> dict:
    out = {}
    for variant, by_process in results.items():
        procs = sorted(by_process)
        n = len(by_process[procs[0]]) // 2
        repeat = {p: [first_difference(by_process[p][g], by_process[p][n + g], names) for g in range(n)] for p in procs}
        across = [first_difference(by_process[procs[0]][g], by_process[q][g], names)
                  for q in procs[1:] for g in range(n)]  # fmt: skip
        out[variant] = {
            "repeats_agree": all(d is None for ds in repeat.values() for d in ds),
            "processes_agree": all(d is None for d in across),
            "repeat_differences": {p: [d for d in ds if d] for p, ds in repeat.items()},
            "process_differences": [d for d in across if d],
        }
    return out


def main() -> None:
    import torch

    from benchmarks.eval_runner import byte_bpe
    from benchmarks.evolve import SEVEN_B, TINY, make_sources
    from rp_eval.evolve.genome import Genome

    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="tiny models on the CPU (a check that it runs)")
    ap.add_argument("--processes", type=int, default=0, help="default: one per GPU")
    ap.add_argument("--genotypes", type=int, default=4)
    ap.add_argument("--dev-items", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--two-kernel", action="store_true", help="also a pass with the two-launch decode attention")
    ap.add_argument("--same-gpu", action="store_true", help="every process on GPU 0, one after another")
    ap.add_argument("--fresh-caches", action="store_true", help="each process with empty compile caches of its own")
    ap.add_argument("--default-only", action="store_true", help="leave out the pass without the shared prefill")
    args = ap.parse_args()
    gpus = not args.tiny and torch.cuda.is_available()
    processes = args.processes or (torch.cuda.device_count() if gpus and not args.same_gpu else 2)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RP_EVAL_HOME"] = str(Path(tmp) / "workspace")
        dtype = torch.float32 if args.tiny else torch.bfloat16
        src = make_sources(Path(tmp), TINY if args.tiny else SEVEN_B, dtype, byte_bpe(1000 if args.tiny else 4000))
        genome = Genome(models=[src["a"], src["b"]], base_model=src["base"], method="dare_ties",
                        dtype="float32" if args.tiny else "bfloat16")  # fmt: skip
        from transformers import AutoConfig

        layers = AutoConfig.from_pretrained(src["base"]).num_hidden_layers
        rng = np.random.default_rng(0)
        x0 = np.asarray(genome.x0(layers), dtype=float)
        genotypes = [x0.tolist()] + [np.clip(x0 + rng.normal(0, 0.3, x0.shape), 0, 1).tolist()
                                     for _ in range(args.genotypes - 1)]  # fmt: skip
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            names = [
                n
                for n, _ in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(src["base"])).named_parameters()
            ]
        settings = {"dev_items": args.dev_items, "new_tokens": args.new_tokens, "same_gpu": args.same_gpu,
                    "caches": str(Path(tmp) / "caches") if args.fresh_caches else "",
                    "default_only": args.default_only}  # fmt: skip
        results = run(genome.to_yaml(), genotypes, processes, gpus, settings | {"two_kernel": False})
        if args.two_kernel:
            results |= run(genome.to_yaml(), genotypes, processes, gpus, settings | {"two_kernel": True})
        print(json.dumps({"summary": summarize(results, names)}), flush=True)


if __name__ == "__main__":
    main()
