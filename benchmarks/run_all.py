"""Every benchmark in one command: rp_eval's path, its plain baseline and the floor, one table, one JSON.

    python benchmarks/run_all.py                       # on a CUDA machine: every figure (about 15 minutes)
    python benchmarks/run_all.py --only decode,merge   # some of them
    python benchmarks/run_all.py --tiny                # tiny models on the CPU: checks the scripts, measures nothing

Each benchmark runs as its own process (one model in memory at a time, a crash loses one line of the table) and
keeps its log and JSON in --out (default benchmarks/results/). The table prints what each measured in the same
run: rp_eval, the baseline, and the floor or target where the issue gives one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name: (script and arguments, where its JSON comes from: "file" (--out) or "stdout" (one JSON object a line))
STEPS: dict[str, tuple[list[str], str]] = {
    "decode": (["decode.py"], "file"),
    "serve": (["serve.py"], "file"),
    "finetune": (["finetune_speed.py"], "file"),
    "merge": (["merge.py"], "file"),
    "evolve": (["evolve.py"], "stdout"),
    "evolve_search": (["evolve.py", "--search", "64"], "stdout"),
}


def run_step(name: str, tiny: bool, out: Path) -> dict | list:
    script, source = STEPS[name]
    command = [sys.executable, str(HERE / script[0]), *script[1:], *(["--tiny"] if tiny else [])]
    target = out / f"{name}.json"
    if source == "file":
        command += ["--out", str(target)]
    start = time.perf_counter()
    with open(out / f"{name}.log", "w", encoding="utf-8") as log:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, check=False)
        log.write(done.stdout)
    seconds = round(time.perf_counter() - start, 1)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode} after {seconds} s, see {out / (name + '.log')}"}
    if source == "file":
        return json.loads(target.read_text(encoding="utf-8"))
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    target.write_text(json.dumps(lines, indent=1), encoding="utf-8")
    return lines


def rows(name: str, data) -> list[tuple[str, object, object, object]]:
    """(figure, rp_eval, baseline, floor or target) lines for the table."""
    if isinstance(data, dict) and "error" in data:
        return [(name, data["error"], "", "")]
    out = []
    if name == "decode":
        for r in data["results"]:
            s = r["shape"]
            out += [
                (f"{s} chat tokens/s", r["chat_tok_s"], r["chat_tok_s_generate"], f"{r.get('floor_tok_s', '')} floor"),
                (f"{s} first token ms", r["chat_first_ms"], r["chat_first_ms_generate"], "< 30 target"),
                (f"{s} eval 64x64 s", r["eval_batch_s"], r["eval_batch_s_generate"], "< 0.8 target"),
                (f"{s} warm-up s", r.get("warmup_s", ""), "", "<= 60 target"),
            ]
    elif name == "serve":
        targets = {1: ">= 216 tok/s, first < 25 ms", 16: ">= 2000 tok/s, p95 first < 150 ms", 32: "no OOM"}
        for r in data["results"]:
            s = r["shape"]
            for n in (1, 4, 16, 32):
                got = r.get(f"{n}_streams")
                if not got:
                    continue
                base = r.get(f"{n}_one_at_a_time") or r.get(f"{n}_hf_static") or {}
                ours = f"{got['aggregate_tok_s']} tok/s, p95 {got['first_ms_p95']} ms"
                out.append((f"{s} {n} streams", ours, base.get("aggregate_tok_s", ""), targets.get(n, "")))
            if r.get("1_hf_static"):
                out.append((f"{s} 1 stream, transformers static", "", r["1_hf_static"].get("aggregate_tok_s"), ""))
    elif name == "finetune":
        base = next((r for r in data["results"] if r["variant"].startswith("plain")), {})
        for r in data["results"]:
            if r is not base:
                figure = f"{r['variant']} tokens/s, peak GB"
                out.append((figure, f"{r['tokens_per_second']}, {r['peak_gb']}",
                            f"{base.get('tokens_per_second', '')}, {base.get('peak_gb', '')}", ""))  # fmt: skip
    elif name == "merge":
        for r in data["results"]:
            out.append((f"7B merge {r['method']} s", r["rp_eval_s"], r["mergekit_cli_s"], ""))
    elif name in ("evolve", "evolve_search"):
        for r in data:
            if "method" in r:
                figure = f"candidate in memory {r['method']} s"
                out.append((figure, r.get("in_memory_s"), r.get("mergekit_run_merge_s"), ""))
            else:
                out.append(("evolve " + ", ".join(f"{k}={v}" for k, v in r.items())[:90], "", "", ""))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(STEPS), help=f"comma-separated, of: {', '.join(STEPS)}")
    p.add_argument("--tiny", action="store_true", help="tiny models on the CPU: checks the scripts")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(STEPS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in names:
        print(f"running {name} …", file=sys.stderr, flush=True)
        results[name] = run_step(name, args.tiny, out)
    table = [row for name in names for row in rows(name, results[name])]
    (out / "all.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "results": results}, indent=1))
    width = max(len(r[0]) for r in table) if table else 10
    print(f"{'figure':{width}}  {'rp_eval':>16}  {'baseline':>16}  floor / target")
    for figure, ours, baseline, floor in table:
        print(f"{figure:{width}}  {ours!s:>16}  {baseline!s:>16}  {floor}")


if __name__ == "__main__":
    main()
