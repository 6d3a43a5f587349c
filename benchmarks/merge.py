"""Merging two 7B-shaped models: rp_eval's merge run against mergekit's own CLI (`mergekit-yaml`), same recipe.

    python benchmarks/merge.py            # two 7B Llama-2-shaped random-weight models, bf16, on a CUDA GPU
    python benchmarks/merge.py --tiny     # tiny models on the CPU: checks the script, measures nothing

Both read the same source folders (read once beforehand, so both find them in the page cache) and write a
full merged model to disk. Time is wall-clock for the whole merge; peak GPU memory is torch's allocator peak
in the merging process. rp_eval's run also registers the result in its store.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECIPE = """models:
  - model: {a}
    parameters: {{weight: 0.5, density: 0.5}}
  - model: {b}
    parameters: {{weight: 0.5, density: 0.5}}
merge_method: {method}
base_model: {a}
dtype: bfloat16
"""

BASELINE = """
import sys, torch
from mergekit.scripts.run_yaml import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print("PEAK", torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0)
"""


def build(folder: Path, seed: int, tiny: bool) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from decode import SHAPES, word_tokenizer

    spec = dict(SHAPES["tiny" if tiny else "llama2-7b"])
    spec.pop("arch")
    torch.manual_seed(seed)
    device = "cpu" if tiny else "cuda"
    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(**spec, bos_token_id=1, eos_token_id=2, pad_token_id=0))
    model.to(torch.bfloat16).save_pretrained(folder)
    word_tokenizer(spec["vocab_size"]).save_pretrained(folder)
    del model


def read_through(folder: Path) -> None:
    for f in folder.glob("*.safetensors"):
        with open(f, "rb") as fh:
            while fh.read(1 << 26):
                pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--work", default="/tmp/rp_eval_merge_bench")
    p.add_argument("--methods", default="ties,dare_ties")
    p.add_argument("--out", default=str(Path(__file__).with_name("merge.json")))
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["RP_EVAL_HOME"] = str(work / "workspace")
    a, b = work / "source-a", work / "source-b"
    for folder, seed in ((a, 0), (b, 1)):
        if not (folder / "config.json").exists():
            build(folder, seed, args.tiny)
    from rp_eval.merge.run import merge_all

    results = []
    for method in args.methods.split(","):
        recipe = RECIPE.format(a=a, b=b, method=method)
        path = work / f"{method}.yaml"
        path.write_text(recipe)
        row = {"method": method}

        read_through(a), read_through(b)
        out = work / f"cli-{method}"
        start = time.perf_counter()
        cmd = [sys.executable, "-c", BASELINE, str(path), str(out), "--lazy-unpickle", "--copy-tokenizer"]
        if torch.cuda.is_available():
            cmd.append("--cuda")
        done = subprocess.run(cmd, capture_output=True, text=True)
        row["mergekit_cli_s"] = round(time.perf_counter() - start, 2)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        peak = [ln for ln in done.stdout.splitlines() if ln.startswith("PEAK")]
        row["mergekit_cli_peak_GB"] = round(int(peak[-1].split()[1]) / 1e9, 2) if peak else None
        shutil.rmtree(out)  # room on the disk for the next merge

        read_through(a), read_through(b)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        name = f"bench-{method}-{int(time.time())}"
        merge_all(recipe, name)
        row["rp_eval_s"] = round(time.perf_counter() - start, 2)
        row["rp_eval_peak_GB"] = round(torch.cuda.max_memory_allocated() / 1e9, 2) if torch.cuda.is_available() else 0
        from rp_eval.models.registry import remove_model

        remove_model(name, delete_files=True)
        results.append(row)
        print(row, flush=True)
    info = {
        "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "sources": "tiny" if args.tiny else "7B Llama-2 shape, bf16, random weights",
        "results": results,
    }
    Path(args.out).write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
