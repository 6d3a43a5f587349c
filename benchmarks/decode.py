"""Decoding speed: rp_eval's generation loop (static engine, CUDA graphs) against plain `model.generate()`.

    python benchmarks/decode.py                 # 7B Llama-2 and Mistral shapes, bf16, on a CUDA GPU
    python benchmarks/decode.py --tiny          # a tiny model on the CPU: checks the script, measures nothing

Random weights (speed does not depend on their values). Fixed lengths: stopping is off for the speed
figures, so every row makes exactly the asked number of tokens; the project's loop still decodes text and
checks stop strings at every step, as it does in the chat. Prints a table and writes benchmarks/decode.json
(or --out). The floor is the weight bytes over the measured device copy bandwidth.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rp_eval.chat.engine import EagerEngine  # noqa: E402
from rp_eval.chat.generate import GenerationSettings, StopRules  # noqa: E402
from rp_eval.chat.service import GenerationService, own, service_for  # noqa: E402

SHAPES = {
    "llama2-7b": dict(
        arch="llama",
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
    ),
    "mistral-7b": dict(
        arch="mistral",
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=32000,
        sliding_window=4096,
    ),
    "tiny": dict(
        arch="llama",
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=32000,
    ),
}


def word_tokenizer(vocab_size: int):
    """A tokenizer covering every id of the model (words t0..tN), so any sampled id decodes to text."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"t{i}": i for i in range(3, vocab_size)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<unk>"
    )


def build(shape: str, device: str, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    spec = dict(SHAPES[shape])
    arch = spec.pop("arch")
    config = (LlamaConfig if arch == "llama" else MistralConfig)(
        **spec, max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=0
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = (LlamaForCausalLM if arch == "llama" else MistralForCausalLM)(config).to(dtype)
    model.eval()
    return model


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def mean_seconds(fn, repeats: int, warm: int = 1) -> float:
    """Mean seconds a call of `fn` takes: `warm` calls first, then `repeats` timed between GPU synchronisations
    (none on a machine without CUDA)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for _ in range(warm):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def copy_bandwidth() -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write counted)."""
    x = torch.empty(2 * 2**30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    torch.cuda.synchronize()
    return 2 * x.numel() * 10 / (time.perf_counter() - start)


def prompts(batch: int, length: int, vocab: int, seed: int = 1) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, length), generator=g)
    return [" ".join(f"t{i}" for i in row.tolist()) for row in ids]


def ours(model, tokenizer, texts: list[str], new: int, engine: str, device: str) -> tuple[float, float, list]:
    """rp_eval's path: one request of len(texts) rows through the model's generation service, stops off."""
    settings = GenerationSettings(temperature=0, max_new_tokens=new, engine=engine, trim_to_sentence=False)
    no_stops = StopRules(frozenset(), ())
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    sync(device)
    start = time.perf_counter()
    results = service_for(model).submit(tokenizer, texts, encoded, settings, no_stops).wait()
    sync(device)
    first = min(r.first_token_seconds for r in results)
    return time.perf_counter() - start, first, [r.raw_text for r in results]


def baseline(model, tokenizer, texts: list[str], new: int, device: str) -> tuple[float, float]:
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    kwargs = dict(do_sample=False, eos_token_id=None, pad_token_id=0)
    sync(device)
    start = time.perf_counter()
    model.generate(**enc, max_new_tokens=1, min_new_tokens=1, **kwargs)
    sync(device)
    first = time.perf_counter() - start
    start = time.perf_counter()
    model.generate(**enc, max_new_tokens=new, min_new_tokens=new, **kwargs)
    sync(device)
    return time.perf_counter() - start, first


def logits_gap(model, tokenizer, text: str, device: str) -> float:
    """Max |logit difference| of the prefill and the first decode step, static engine vs eager, same prompt."""
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    engine = service_for(model).static_engine()
    enc = torch.tensor([prompt], device=device)
    with torch.inference_mode():
        eager = EagerEngine(model)
        first = eager.prefill(enc, torch.ones_like(enc), 8)
        nxt = first.argmax(-1)
        second = eager.step(nxt)
        row = engine.rows - 1  # the service is idle: its last row is free
        static_first = engine.prefill(row, prompt)
        engine.ids[row, 0] = nxt[0]
        static_second = engine.step(engine.rows)[row : row + 1]
        engine.release(row)
    return max((a.float() - b.float()).abs().max().item() for a, b in ((first, static_first), (second, static_second)))


def check_tokens(device: str) -> dict:
    """Greedy tokens of the fast path against plain generate(), fp32, tiny Llama and Mistral, a left-padded
    batch of prompts of different lengths and a single prompt: they must be equal token for token."""
    out = {}
    for arch in ("llama", "mistral"):
        spec = dict(SHAPES["tiny"], arch=arch)
        SHAPES[f"tiny-{arch}"] = spec
        model = build(f"tiny-{arch}", device, torch.float32)
        tokenizer = word_tokenizer(model.config.vocab_size)
        tokenizer.padding_side = "left"
        texts = [prompts(1, n, model.config.vocab_size, seed=n)[0] for n in (5, 17, 30)]
        service = GenerationService(model)
        own(model, service)
        service.warm_up()
        _, _, fast = ours(model, tokenizer, texts, 24, "auto", device)
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        ref = model.generate(
            **enc, max_new_tokens=24, min_new_tokens=24, do_sample=False, eos_token_id=None, pad_token_id=0
        )[:, enc.input_ids.shape[1] :].tolist()
        ref = [tokenizer.decode(r, skip_special_tokens=False, clean_up_tokenization_spaces=False) for r in ref]
        _, _, single = ours(model, tokenizer, texts[1:2], 24, "auto", device)
        out[f"{arch}_batch_equal"] = fast == ref
        out[f"{arch}_single_equal"] = single[0] == ref[1]
        engine = service.static_engine()
        out[f"{arch}_graphs"] = engine.captures if engine else 0
    return out


def run(shape: str, device: str, dtype: torch.dtype, chat: tuple[int, int], batch: tuple[int, int, int]) -> dict:
    model = build(shape, device, dtype)
    tokenizer = word_tokenizer(model.config.vocab_size)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    res: dict = {"shape": shape, "weights_GB": round(weights / 1e9, 2)}

    prompt_len, new = chat
    rows, plen, bnew = batch
    text = prompts(1, prompt_len, model.config.vocab_size)
    service = GenerationService(model)  # what loading a model does: a service, its graphs captured at once
    own(model, service)
    res["warmup_s"] = round(service.warm_up(), 2)
    engine = service.static_engine()
    if engine is not None:
        res["graphs"] = engine.captures
        res["kv_rows_x_columns"] = f"{engine.rows}x{engine.columns}"
    ours(model, tokenizer, text, 4, "auto", device)  # first prefill at this shape (kernel selection)
    t, first, _ = ours(model, tokenizer, text, new, "auto", device)
    res["chat_tok_s"] = round(new / t, 1)
    res["chat_first_ms"] = round(first * 1000, 1)
    bt, bfirst = baseline(model, tokenizer, text, new, device)
    res["chat_tok_s_generate"] = round(new / bt, 1)
    res["chat_first_ms_generate"] = round(bfirst * 1000, 1)

    texts = prompts(rows, plen, model.config.vocab_size, seed=2)
    ours(model, tokenizer, texts, 4, "auto", device)
    t, _, ids_fast = ours(model, tokenizer, texts, bnew, "auto", device)
    res["eval_batch_s"] = round(t, 3)
    bt, _ = baseline(model, tokenizer, texts, bnew, device)
    res["eval_batch_s_generate"] = round(bt, 3)
    if engine is not None:
        res["graphs_after_runs"] = engine.captures  # equal to "graphs": no capture during requests
    res["logits_max_diff_static_vs_eager"] = round(logits_gap(model, tokenizer, text[0], device), 4)
    if device == "cuda":
        bw = copy_bandwidth()
        res["copy_TB_s"] = round(bw / 1e12, 2)
        res["floor_tok_s"] = round(bw / weights, 1)  # a step reads every weight once, at copy speed at best
        res["peak_GB"] = round(torch.cuda.max_memory_allocated() / 1e9, 1)
    service.close()
    del model, engine, service
    gc.collect()  # the model and its engine refer to each other
    if device == "cuda":
        torch.cuda.empty_cache()
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="a tiny model on the CPU (a check of the script)")
    p.add_argument("--shapes", default="llama2-7b,mistral-7b")
    p.add_argument("--out", default=str(Path(__file__).with_name("decode.json")))
    args = p.parse_args()
    device = "cpu" if args.tiny else "cuda"
    checks = check_tokens(device)
    print("token checks against generate():", checks)
    if args.tiny:
        results = [run("tiny", "cpu", torch.float32, (32, 16), (4, 16, 8))]
    else:
        results = [run(s, "cuda", torch.bfloat16, (512, 256), (64, 128, 64)) for s in args.shapes.split(",")]
    info = {
        "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "results": results,
        "token_checks": checks,
    }
    Path(args.out).write_text(json.dumps(info, indent=1))
    keys = [k for k in results[0] if k != "shape"]
    print(f"{info['device']}, torch {info['torch']}, {info['date']}")
    print(f"{'':34}" + "".join(f"{r['shape']:>14}" for r in results))
    for k in keys:
        print(f"{k:34}" + "".join(f"{r.get(k, ''):>14}" for r in results))


if __name__ == "__main__":
    main()
