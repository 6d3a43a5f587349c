"""Fine-tuning speed and memory on one GPU: rp_eval's LoRA (bf16) and QLoRA (4-bit) against plain
transformers Trainer + peft with default settings, on the same data in the same run.

A 7B Llama-2-shaped model with random weights (no hub). Each conversation is a masked prompt half and a trained
reply half ending in the EOS id, as rp_eval's labels have; `--lengths fixed` makes every one 512 tokens (the
issue's setting), `--lengths varied` draws lengths from 64 to 512, as real role-play data varies, so that
padding counts. Every variant gets the same rows; each uses its own defaults (the baseline: peft's default LoRA on q/v,
random batches, no checkpointing; rp_eval: `FinetuneSettings()` as a run would use them, checkpointing decided
by `rp_eval.finetune.memory`). Each trains `--steps` optimizer steps after one warm-up step; tokens/s counts
the real (non-pad) tokens that went through the model in the timed steps; peak memory is
torch.cuda.max_memory_allocated over the whole variant (load included).

    python benchmarks/finetune_speed.py --out finetune-h100.json   # needs a CUDA GPU (and bitsandbytes for QLoRA)
    python benchmarks/finetune_speed.py --tiny                      # a check of the script on the CPU: measures nothing
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments

from rp_eval.finetune.config import FinetuneSettings
from rp_eval.finetune.labels import collator, pad_multiple
from rp_eval.finetune.memory import checkpointing, gpu_bytes, qlora_quantization
from rp_eval.finetune.train import lora_config, training_arguments

CUDA = torch.cuda.is_available()
LLAMA2_7B = dict(
    hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
    vocab_size=32000, max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=0,
)  # fmt: skip
TINY = {**LLAMA2_7B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "vocab_size": 512}  # fmt: skip


class _Clock(TrainerCallback):
    """Times optimizer steps 2..N and counts the tokens the model saw in them (a forward pre-hook)."""

    def __init__(self, model) -> None:
        self.start = self.end = 0.0
        self.steps = 0
        self.seen = [0, 0]  # real tokens, tokens including padding
        self.at_start = [0, 0]
        self.at_end = [0, 0]
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        if module.training and kwargs.get("attention_mask") is not None:
            self.seen[0] += int(kwargs["attention_mask"].sum())
            self.seen[1] += kwargs["attention_mask"].numel()

    def on_step_end(self, args, state, control, **kwargs):
        if CUDA:
            torch.cuda.synchronize()
        if state.global_step == 1:
            self.start = time.perf_counter()  # the first step (allocation, autotuning) is not timed
            self.at_start = list(self.seen)
        self.steps = state.global_step - 1
        self.end = time.perf_counter()  # before any checkpoint is written
        self.at_end = list(self.seen)


def _data(n: int, seq: int, vocab: int, varied: bool) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n):
        length = int(torch.randint(seq // 8, seq + 1, (1,), generator=g)) if varied else seq
        ids = torch.randint(3, vocab, (length,), generator=g).tolist()
        ids[-1] = 2
        half = length // 2
        rows.append({"input_ids": ids, "labels": [-100] * half + ids[half:], "attention_mask": [1] * length})
    return rows


class _Tok:
    """What DataCollatorForSeq2Seq needs of a tokenizer, for data that is already ids."""

    pad_token_id = 0
    padding_side = "right"

    def save_pretrained(self, folder):
        pass

    def pad(self, features, **kwargs):
        from transformers import BatchEncoding

        width = max(len(f["input_ids"]) for f in features)
        if kwargs.get("pad_to_multiple_of"):
            width = -(-width // kwargs["pad_to_multiple_of"]) * kwargs["pad_to_multiple_of"]
        out = {k: [f[k] + [0] * (width - len(f[k])) for f in features] for k in ("input_ids", "attention_mask")}
        return BatchEncoding(out, tensor_type="pt")


def _run(name: str, model, args: TrainingArguments, rows: list[dict], pad_to: int | None = None) -> dict:
    clock = _Clock(model)
    pad = collator(_Tok())
    pad.pad_to_multiple_of = pad_to
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=pad, callbacks=[clock])
    trainer.train()
    seconds = clock.end - clock.start
    real, padded = (clock.at_end[i] - clock.at_start[i] for i in (0, 1))
    result = {
        "variant": name,
        "tokens_per_second": round(real / seconds, 1),  # real tokens only
        "padding_share": round(1 - real / max(padded, 1), 3),
        "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if CUDA else None,
        "timed_steps": clock.steps,
        "seconds": round(seconds, 2),
        "real_tokens": real,
        "batch": args.per_device_train_batch_size,
        "accumulation": args.gradient_accumulation_steps,
        "gradient_checkpointing": bool(getattr(args, "activation_checkpointing", None) or args.gradient_checkpointing),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    print(json.dumps(result), flush=True)
    return result


def _fresh() -> None:
    gc.collect()
    if CUDA:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _model(shape: dict):
    dtype = torch.bfloat16 if CUDA else torch.float32
    torch.set_default_dtype(dtype)  # built in bf16 directly: no fp32 copy in the peak
    try:
        with torch.device("cuda" if CUDA else "cpu"):
            return LlamaForCausalLM(LlamaConfig(**shape))
    finally:
        torch.set_default_dtype(torch.float32)


def _rp_eval(name: str, base, s: FinetuneSettings, out: Path, rows: list[dict], pad_to: int | None = -1) -> dict:
    """rp_eval's path: its LoRA config, its checkpointing rule, its Trainer arguments."""
    from peft import get_peft_model

    weight_bytes = sum(p.numel() * p.element_size() for p in base.parameters())
    model = get_peft_model(base, lora_config(s, base, "llama"))
    trainable, _ = model.get_nb_trainable_parameters()
    ckpt = checkpointing(s, base.config, weight_bytes, trainable, gpu_bytes())
    print(f"{name}: {ckpt.reason}", flush=True)
    if ckpt.on:
        base.config.use_cache = False
    args = training_arguments(s, str(out / name.replace(" ", "_")), has_eval=False, checkpoint_activations=ckpt.on)
    return _run(name, model, args, rows, pad_multiple() if pad_to == -1 else pad_to)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--out", default="")
    p.add_argument("--lengths", choices=["fixed", "varied"], default="fixed")
    p.add_argument("--skip-qlora", action="store_true")
    p.add_argument("--explain", action="store_true", help="also rp_eval with one default changed at a time")
    p.add_argument("--tiny", action="store_true", help="a tiny model on the CPU: checks the script, measures nothing")
    a = p.parse_args()
    shape, seq = (TINY, 64) if a.tiny else (LLAMA2_7B, 512)
    torch.manual_seed(0)
    out = Path(tempfile.mkdtemp())
    s = FinetuneSettings(
        base_model="bench", max_steps=a.steps + 1, save_steps=10_000, logging_steps=1000, max_length=seq
    )
    rows = _data(s.batch_size * s.grad_accum * (a.steps + 1), seq, shape["vocab_size"], a.lengths == "varied")
    results = []

    # 1. plain transformers Trainer + peft, default settings (peft's default LoRA targets, no checkpointing)
    from peft import LoraConfig, get_peft_model

    _fresh()
    model = get_peft_model(_model(shape), LoraConfig(task_type="CAUSAL_LM"))
    plain = TrainingArguments(
        output_dir=str(out / "plain"), per_device_train_batch_size=s.batch_size, max_steps=a.steps + 1,
        gradient_accumulation_steps=s.grad_accum, bf16=CUDA, use_cpu=not CUDA, report_to="none", save_strategy="no",
        disable_tqdm=True,
    )  # fmt: skip
    results.append(_run("plain Trainer + peft defaults", model, plain, rows))
    del model

    # 2. rp_eval LoRA with its defaults (q/v projections, r 16, no dropout, length-grouped batches padded to a
    # multiple of 64 tokens on a GPU, checkpointing by the memory rule)
    _fresh()
    results.append(_rp_eval("rp_eval LoRA", _model(shape), s, out, rows))

    # 3. why: rp_eval with one default changed at a time
    if a.explain:
        for label, change in (
            ("rp_eval LoRA, checkpointing on", {"gradient_checkpointing": "on"}),
            ("rp_eval LoRA, all seven projections", {"target_modules": ("all-linear",)}),
            ("rp_eval LoRA, all seven, dropout 0.05", {"target_modules": ("all-linear",), "lora_dropout": 0.05}),
            (
                "rp_eval LoRA, all seven, checkpointing",
                {"target_modules": ("all-linear",), "gradient_checkpointing": "on"},
            ),
        ):
            _fresh()
            results.append(_rp_eval(label, _model(shape), s.model_copy(update=change), out, rows))
        _fresh()  # batches padded to the longest only, not to a multiple of 64 tokens
        results.append(_rp_eval("rp_eval LoRA, padded to the longest only", _model(shape), s, out, rows, pad_to=None))

    # 4. rp_eval QLoRA: the base loaded 4-bit (NF4, double quantisation, bf16 compute) as rp_eval loads it
    if CUDA and not a.skip_qlora:
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM

        _fresh()
        folder = out / "random-7b"
        _model(shape).save_pretrained(folder)
        _fresh()
        base = AutoModelForCausalLM.from_pretrained(
            folder, quantization_config=qlora_quantization(), device_map={"": 0}, dtype=torch.bfloat16
        )
        sq = s.model_copy(update={"qlora": True})
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=sq.gradient_checkpointing != "off")
        results.append(_rp_eval("rp_eval QLoRA (4-bit)", base, sq, out, rows))

    report = {
        "gpu": torch.cuda.get_device_name() if CUDA else "cpu (tiny: measures nothing)",
        "torch": torch.__version__,
        "sequence": seq,
        "lengths": a.lengths,
        "results": results,
    }
    print(json.dumps(report, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
