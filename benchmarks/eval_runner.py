"""Evaluation runner speed: replies per second of the runner (generate_batch + scoring) against plain batched
`model.generate()` on the same prompts, in the same process.

    RP_EVAL_HOME=ws python benchmarks/eval_runner.py --demo      # the demo models on the CPU (builds them if absent)
    python benchmarks/eval_runner.py --7b                         # a 7B Llama-2-shaped random-weight model, CUDA

The 7B model has Llama-2-7B's shapes except the vocabulary, which is the demo tokenizer's (trained here on the
demo corpus, so every sampled id decodes to text and the prompts are the task's real Japanese prompts). Both
sides decode greedily, at most `--new-tokens` tokens, and stop at EOS. Prints one JSON line per model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rp_eval.chat.formats import FORMATS, render_prompt  # noqa: E402
from rp_eval.chat.generate import GenerationSettings  # noqa: E402
from rp_eval.evaluate.metrics import LengthTarget  # noqa: E402
from rp_eval.evaluate.runner import generate_items, score_row  # noqa: E402
from rp_eval.evaluate.score import load_weights  # noqa: E402
from rp_eval.evaluate.task import load_task  # noqa: E402


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def runner_side(model, tok, fmt, task, items, settings, batch) -> float:
    weights, target = load_weights(), LengthTarget()
    sync()
    start = time.perf_counter()
    for chunk, results in generate_items(model, tok, fmt, task, items, settings, batch, seed=0):
        for item, r in zip(chunk, results, strict=True):
            stored = {"text": r.text, "finish_reason": r.finish_reason, "cut_mid_sentence": r.cut_mid_sentence}
            score_row("bench", item, task, stored, target, weights, "あなた")
    sync()
    return time.perf_counter() - start


def plain_side(model, tok, fmt, task, items, settings, batch) -> float:
    """The baseline: HF generate on the same rendered prompts, left padded, greedy, same cap, no scoring."""
    tok.padding_side = "left"
    prompts = [render_prompt(fmt, tok, i.messages(task.personas[i.persona])) for i in items]
    sync()
    start = time.perf_counter()
    for k in range(0, len(prompts), batch):
        enc = tok(prompts[k : k + batch], return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            out = model.generate(
                **enc, max_new_tokens=settings.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
            )
        tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    sync()
    return time.perf_counter() - start


def measure(name, model, tok, fmt, task, items, settings, batch, repeats: int) -> dict:
    runner_side(model, tok, fmt, task, items[:batch], settings, batch)  # warm-up (CUDA graphs, allocator)
    plain_side(model, tok, fmt, task, items[:batch], settings, batch)
    runner = min(runner_side(model, tok, fmt, task, items, settings, batch) for _ in range(repeats))
    plain = min(plain_side(model, tok, fmt, task, items, settings, batch) for _ in range(repeats))
    n = len(items)
    return {
        "model": name,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "items": n,
        "new_tokens": settings.max_new_tokens,
        "batch": batch,
        "runner_s": round(runner, 3),
        "runner_replies_per_s": round(n / runner, 2),
        "plain_generate_s": round(plain, 3),
        "plain_replies_per_s": round(n / plain, 2),
    }


def demo(args) -> None:
    from rp_eval.models.demo import build_demo_models
    from rp_eval.models.loading import model_cache

    task = load_task()
    items = task.select("all", args.items, 0)
    settings = GenerationSettings(max_new_tokens=args.new_tokens, temperature=0.0)
    for name in build_demo_models():
        loaded = model_cache().get(name)
        out = measure(name, loaded.model, loaded.tokenizer, loaded.format, task, items, settings, args.batch, 2)
        print(json.dumps(out), flush=True)


def byte_bpe(vocab_size: int):
    """A byte-level BPE tokenizer trained on the demo corpus and the task (as the demo models' tokenizer is made;
    built here so this script needs no database package on a bare GPU machine)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = Path(__file__).resolve().parents[1] / "prompts" / "demo" / "corpus.jsonl"
    texts = [
        m["content"] for line in corpus.read_text(encoding="utf-8").splitlines() for m in json.loads(line)["messages"]
    ]
    texts += [p.system_text() for p in load_task().personas.values()]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )  # fmt: skip
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        clean_up_tokenization_spaces=False,
    )  # fmt: skip


def seven_b(args) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = byte_bpe(4000)
    config = LlamaConfig(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=32, vocab_size=len(tok), max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    task = load_task()
    items = task.select("all", args.items, 0)
    settings = GenerationSettings(max_new_tokens=args.new_tokens, temperature=0.0)
    out = measure("llama2-7b-shape", model, tok, FORMATS["llama2"], task, items, settings, args.batch, 3)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--demo", action="store_true")
    p.add_argument("--7b", dest="seven_b", action="store_true")
    p.add_argument("--items", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    a = p.parse_args()
    seven_b(a) if a.seven_b else demo(a)
