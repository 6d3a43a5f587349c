"""Serving speed: concurrent chat streams on one model through its generation service (continuous batching)
against the same requests served one at a time, and against transformers' `generate(cache_implementation=
"static")`, in the same run.

    python benchmarks/serve.py                 # 7B Llama-2 and Mistral shapes, bf16, on a CUDA GPU
    python benchmarks/serve.py --tiny          # a tiny model on the CPU: checks the script, measures nothing
    python benchmarks/serve.py --budget-gb 9   # the KV cache planned from 9 GB, as on a 24 GB card with a 7B model
    python benchmarks/serve.py --kv-layout blocks --budget-gb 9   # the same budget as a pool of blocks

Each stream: a 512-token prompt (random ids, random weights) and 256 new tokens, greedy, stopping off, so every
stream makes exactly 256 tokens. For 1, 4, 16 and 32 streams started together: aggregate tokens/s (all tokens
over the wall time), tokens/s per stream (each stream's own decode rate), first token p50/p95 (from submit).
`--turns N` adds one role-play conversation of N turns (a 300-token system prompt, then turns of about 150 tokens
of user line and reply each): the first-token time of each turn, turn N against turn 1 (a chat turn prefills its
whole history unless a cached prefix is reused; with the blocks layout each turn's prefilled tokens are
recorded). Each shape's result records the plan: the KV rows the engine made and the block pool
(rp_eval/chat/blocks.py) the same budget gives (the pool itself with `--kv-layout blocks`).
Writes JSON to --out and prints a table with the targets.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.decode import build, prompts, word_tokenizer  # noqa: E402
from rp_eval.chat.blocks import plan_blocks  # noqa: E402
from rp_eval.chat.engine import default_layout, kv_bytes_per_token, plan  # noqa: E402
from rp_eval.chat.generate import GenerationSettings, StopRules  # noqa: E402
from rp_eval.chat.service import GenerationService, own  # noqa: E402

NO_STOPS = StopRules(frozenset(), ())


def concurrent(service, tokenizer, encoded: list[list[int]], new: int) -> dict:
    settings = GenerationSettings(temperature=0, max_new_tokens=new, trim_to_sentence=False, engine="static")
    results, barrier = [None] * len(encoded), threading.Barrier(len(encoded))

    def one(i):
        barrier.wait()
        results[i] = service.submit(tokenizer, ["p"], [encoded[i]], settings, NO_STOPS).wait()[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(encoded))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    firsts = sorted(r.first_token_seconds * 1000 for r in results)
    return {
        "wall_s": round(wall, 3),
        "aggregate_tok_s": round(sum(r.new_tokens for r in results) / wall, 1),
        "per_stream_tok_s": round(statistics.mean(r.tokens_per_second for r in results), 1),
        "first_ms_p50": round(firsts[len(firsts) // 2], 1),
        "first_ms_p95": round(firsts[min(len(firsts) - 1, int(round(0.95 * (len(firsts) - 1))))], 1),
    }


def one_at_a_time(service, tokenizer, encoded: list[list[int]], new: int) -> dict:
    settings = GenerationSettings(temperature=0, max_new_tokens=new, trim_to_sentence=False, engine="static")
    start = time.perf_counter()
    made = sum(service.submit(tokenizer, ["p"], [e], settings, NO_STOPS).wait()[0].new_tokens for e in encoded)
    wall = time.perf_counter() - start
    return {"wall_s": round(wall, 3), "aggregate_tok_s": round(made / wall, 1)}


def conversation(service, tokenizer, vocab: int, turns: int, new: int = 32) -> dict:
    """One conversation turn after turn: each turn's prompt is the whole history so far plus a new user line
    (random ids: a 300-token system prompt, 100-token user lines, the model's own replies of `new` tokens kept in
    the history with 20 tokens of turn markup), as a chat client sends it. First-token time of every turn."""
    settings = GenerationSettings(temperature=0, max_new_tokens=new, trim_to_sentence=False, engine="static")
    g = torch.Generator().manual_seed(11)
    history = torch.randint(3, vocab, (300,), generator=g).tolist()
    firsts, lengths, prefilled = [], [], []
    engine = service.static_engine()
    for _ in range(turns):
        history += torch.randint(3, vocab, (100,), generator=g).tolist()
        before = engine.prefilled
        result = service.submit(tokenizer, ["p"], [history], settings, NO_STOPS).wait()[0]
        firsts.append(round(result.first_token_seconds * 1000, 1))
        lengths.append(len(history))
        prefilled.append(engine.prefilled - before)
        reply = tokenizer(result.raw_text, add_special_tokens=False)["input_ids"][:new]
        history += reply + torch.randint(3, vocab, (20,), generator=g).tolist()
    return {
        "prompt_tokens": lengths,
        "prefilled_tokens": prefilled,
        "first_ms": firsts,
        "last_over_first": round(firsts[-1] / firsts[0], 2) if firsts[0] else None,
    }


def hf_static(model, encoded: list[list[int]], new: int, device: str) -> dict:
    """transformers' own static cache (it compiles the forward on a GPU at the first call of each shape; the
    call timed is the second)."""
    ids = torch.tensor(encoded, device=device)
    kwargs = dict(
        max_new_tokens=new,
        min_new_tokens=new,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
        cache_implementation="static",
    )
    start = time.perf_counter()
    model.generate(ids, **kwargs)
    first_call = time.perf_counter() - start
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.generate(ids, **kwargs)
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 3),
        "aggregate_tok_s": round(len(encoded) * new / wall, 1),
        "first_call_s": round(first_call, 1),
    }


def run(
    shape: str,
    device: str,
    dtype,
    streams: list[int],
    prompt_len: int,
    new: int,
    sequential: set,
    hf: set,
    budget: int | None = None,
    turns: int = 0,
    layout: str | None = None,
    chunk: int | None = None,
) -> dict:
    model = build(shape, device, dtype)
    tokenizer = word_tokenizer(model.config.vocab_size)
    if budget is None and device == "cuda":  # the engine's own default, so the block plan below has its bytes
        budget = int(torch.cuda.mem_get_info()[0] * 0.6)
    layout = layout or default_layout(torch.device(device))
    if layout == "blocks":  # rows for every stream at once; the budget buys the pool
        blocks = plan_blocks(kv_bytes_per_token(model), budget).blocks if budget else None
        service = GenerationService(
            model, rows=max(32, *streams), kv_layout="blocks", blocks=blocks, prefill_chunk=chunk
        )
    else:
        rows = plan(model, budget_bytes=budget)[0] if budget else None
        service = GenerationService(model, rows=rows, kv_layout="rows")
    own(model, service)
    res: dict = {"shape": shape, "warmup_s": round(service.warm_up(), 1)}
    engine = service.static_engine()
    res["kv"] = f"{engine.rows} rows x {engine.columns} columns" + (
        f" over a pool of {engine.blocks:,} blocks of {engine.block_tokens} tokens" if layout == "blocks" else ""
    )
    if budget:
        res["budget_GB"] = round(budget / 1e9, 1)
        res["blocks_for_the_same_budget"] = plan_blocks(kv_bytes_per_token(model), budget).describe()
    captured = engine.captures
    texts = prompts(max(streams), prompt_len, model.config.vocab_size, seed=3)
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    concurrent(service, tokenizer, encoded[:2], 8)  # first use of the shapes
    for n in streams:
        res[f"{n}_streams"] = concurrent(service, tokenizer, encoded[:n], new)
        if n in sequential:
            res[f"{n}_one_at_a_time"] = one_at_a_time(service, tokenizer, encoded[:n], new)
    if turns:
        res[f"conversation_{turns}_turns"] = conversation(service, tokenizer, model.config.vocab_size, turns)
    res["graphs_captured_during_runs"] = engine.captures - captured
    if device == "cuda":
        res["peak_GB"] = round(torch.cuda.max_memory_allocated() / 1e9, 1)
    if service.admission is not None:
        res["paused"] = service.paused
    service.close()
    for n in streams:
        if n in hf:
            try:
                res[f"{n}_hf_static"] = hf_static(model, encoded[:n], new, device)
            except Exception as err:  # noqa: BLE001 - the baseline failing is a figure too
                res[f"{n}_hf_static"] = {"error": repr(err)[:200]}
    del model, service, engine
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--shapes", default="llama2-7b,mistral-7b")
    p.add_argument("--streams", default="1,4,16,32")
    p.add_argument("--sequential", default="4,16", help="stream counts also served one at a time")
    p.add_argument("--hf", default="1,16", help="stream counts also run through transformers' static generate")
    p.add_argument("--budget-gb", type=float, default=None, help="the KV cache budget (default: 60%% of free)")
    p.add_argument("--turns", type=int, default=0, help="also one conversation of this many turns")
    p.add_argument("--kv-layout", choices=["rows", "blocks"], default=None, help="default: the engine's for the device")
    p.add_argument("--prefill-chunk", type=int, default=None, help="blocks layout: tokens a prefill forward (16)")
    p.add_argument("--out", default=str(Path(__file__).with_name("serve.json")))
    args = p.parse_args()
    budget = int(args.budget_gb * 1e9) if args.budget_gb else None
    streams = [int(n) for n in args.streams.split(",")]
    sequential = {int(n) for n in args.sequential.split(",") if n}
    hf = {int(n) for n in args.hf.split(",") if n}
    if args.tiny:
        results = [
            run(
                "tiny",
                "cpu",
                torch.float32,
                [1, 4],
                32,
                16,
                {4},
                {1},
                budget,
                min(args.turns, 3),
                args.kv_layout,
                args.prefill_chunk,
            )
        ]
    else:
        results = [
            run(
                s,
                "cuda",
                torch.bfloat16,
                streams,
                512,
                256,
                sequential,
                hf,
                budget,
                args.turns,
                args.kv_layout,
                args.prefill_chunk,
            )
            for s in args.shapes.split(",")
        ]
    info = {
        "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "results": results,
        "targets": "1 stream >= 216 tok/s (Llama-2), first token < 25 ms; 16 streams >= 2000 tok/s, p95 first < 150 ms",
    }
    Path(args.out).write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
