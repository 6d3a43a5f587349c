"""The role-play samplers' cost: a decode step of 16 rows with DRY + XTC + min_p on for every row against the same
step with them off (plain temperature sampling), in the same run; target: at most 10% more (issue 28).

    python benchmarks/samplers.py            # 7B Llama-2 shape, bf16, on a CUDA GPU
    python benchmarks/samplers.py --tiny     # a tiny model on the CPU: checks the script, measures nothing

Two figures per setting: (1) the whole step through the generation service: 16 requests submitted together,
each a `--prompt`-token prompt (random ids, random weights) and `--new` new tokens with stopping off, so every
row makes exactly `--new` tokens; milliseconds per decode step = wall time over the service's step count;
(2) the sampler alone (rp_eval/chat/sampling.py `Sampler.sample`) on 16 rows of logits with a history of the
same length, milliseconds per call. DRY runs over prompt and reply (`dry_penalty_last_n` 0), as SillyTavern's
default. Writes JSON to --out and prints the overhead of "on" over "off".
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.decode import build, prompts, word_tokenizer  # noqa: E402
from rp_eval.chat.generate import GenerationSettings, StopRules  # noqa: E402
from rp_eval.chat.sampling import Sampler  # noqa: E402
from rp_eval.chat.service import GenerationService, own  # noqa: E402

NO_STOPS = StopRules(frozenset(), ())
OFF = {"temperature": 1.0, "top_p": 1.0, "min_p": 0.0}
ON = {**OFF, "min_p": 0.05, "dry_multiplier": 0.8, "xtc_probability": 0.5, "xtc_threshold": 0.1}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def through_service(service, tokenizer, encoded, new: int, fields: dict, device: str) -> dict:
    results = [None] * len(encoded)
    barrier = threading.Barrier(len(encoded))

    def one(i):
        settings = GenerationSettings(**fields, seed=i, max_new_tokens=new, trim_to_sentence=False, engine="static")
        barrier.wait()
        results[i] = service.submit(tokenizer, ["p"], [encoded[i]], settings, NO_STOPS).wait()[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(encoded))]
    steps = service.steps
    sync(device)
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sync(device)
    wall = time.perf_counter() - start
    made = service.steps - steps
    assert all(r.new_tokens == new for r in results), [r.new_tokens for r in results]
    return {"wall_s": round(wall, 3), "steps": made, "ms_per_step": round(1000 * wall / max(made, 1), 3)}


def sampler_alone(vocab: int, rows: int, history: int, fields: dict, device: str, calls: int) -> dict:
    tokenizer = word_tokenizer(vocab)
    sampler = Sampler(rows, vocab, torch.device(device))
    g = torch.Generator().manual_seed(0)
    for r in range(rows):
        prompt = torch.randint(3, vocab, (history,), generator=g).tolist()
        settings = GenerationSettings(**fields, max_new_tokens=calls + 8)
        sampler.assign(r, settings, prompt, seed=r, tokenizer=tokenizer)
    logits = torch.randn(rows, vocab, device=device)
    active = list(range(rows))
    for _ in range(3):
        sampler.sample(logits, active)
    sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        sampler.sample(logits, active)
    sync(device)
    return {"ms_per_call": round(1000 * (time.perf_counter() - start) / calls, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--shape", default="llama2-7b")
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--prompt", type=int, default=1024)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--out", default=str(Path(__file__).with_name("samplers.json")))
    a = p.parse_args()
    device = "cpu" if a.tiny else "cuda"
    shape, prompt_len, new = ("tiny", 64, 16) if a.tiny else (a.shape, a.prompt, a.new)
    model = build(shape, device, torch.float32 if a.tiny else torch.bfloat16)
    vocab = model.config.vocab_size
    tokenizer = word_tokenizer(vocab)
    service = GenerationService(model)
    own(model, service)
    service.warm_up()
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in prompts(a.rows, prompt_len, vocab, 5)]
    through_service(service, tokenizer, encoded[:2], 4, OFF, device)  # first use of the shapes
    res: dict = {"shape": shape, "rows": a.rows, "prompt": prompt_len, "new": new}
    if device == "cuda":
        res["card"] = torch.cuda.get_device_name()
    for name, fields in (("off", OFF), ("on", ON), ("off_again", OFF)):
        res[f"step_{name}"] = through_service(service, tokenizer, encoded, new, fields, device)
    service.close()
    for name, fields in (("off", OFF), ("on", ON)):
        res[f"sampler_{name}"] = sampler_alone(vocab, a.rows, prompt_len + new, fields, device, 50)
    off = min(res["step_off"]["ms_per_step"], res["step_off_again"]["ms_per_step"])
    res["step_overhead_pct"] = round(100 * (res["step_on"]["ms_per_step"] / off - 1), 1)
    Path(a.out).write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    print(f"DRY + XTC + min_p on {a.rows} rows: {res['step_overhead_pct']}% per decode step (target: at most 10%)")


if __name__ == "__main__":
    main()
