"""Fine-tuning speed and memory on one GPU: rp_eval's LoRA (bf16) and QLoRA (4-bit) against plain
transformers Trainer + peft with default settings, on the same data in the same run.

A 7B Llama-2-shaped model with random weights (no hub), sequences of 512 tokens (a masked prompt half, a
trained reply half ending in the EOS id, as rp_eval's labels have). Each variant trains `--steps` optimizer
steps after one warm-up step; tokens/s counts every token of the timed steps; peak memory is
torch.cuda.max_memory_allocated over the whole variant (load included).

    python benchmarks/finetune_speed.py --out finetune-h100.json   # needs a CUDA GPU (and bitsandbytes for QLoRA)
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments

from rp_eval.finetune.config import FinetuneSettings
from rp_eval.finetune.labels import collator
from rp_eval.finetune.train import lora_config, training_arguments

SEQ = 512
LLAMA2_7B = dict(
    hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
    vocab_size=32000, max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=0,
)  # fmt: skip


class _Clock(TrainerCallback):
    def __init__(self) -> None:
        self.start = 0.0
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        torch.cuda.synchronize()
        if state.global_step == 1:
            self.start = time.perf_counter()  # the first step (allocation, autotuning) is not timed
        self.steps = state.global_step - 1
        self.end = time.perf_counter()  # before any checkpoint is written


def _data(n: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n):
        ids = torch.randint(3, 32000, (SEQ,), generator=g).tolist()
        ids[-1] = 2
        rows.append({"input_ids": ids, "labels": [-100] * (SEQ // 2) + ids[SEQ // 2 :], "attention_mask": [1] * SEQ})
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
        out = {k: [f[k] + [0] * (width - len(f[k])) for f in features] for k in ("input_ids", "attention_mask")}
        return BatchEncoding(out, tensor_type="pt")


def _run(name: str, model, args: TrainingArguments, rows: list[dict], data_collator) -> dict:
    clock = _Clock()
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=data_collator, callbacks=[clock])
    trainer.train()
    seconds = clock.end - clock.start
    tokens = clock.steps * args.per_device_train_batch_size * args.gradient_accumulation_steps * SEQ
    result = {
        "variant": name,
        "tokens_per_second": round(tokens / seconds, 1),
        "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "timed_steps": clock.steps,
        "seconds": round(seconds, 2),
        "batch": args.per_device_train_batch_size,
        "accumulation": args.gradient_accumulation_steps,
        "gradient_checkpointing": bool(getattr(args, "activation_checkpointing", None) or args.gradient_checkpointing),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    print(json.dumps(result), flush=True)
    return result


def _fresh() -> None:
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def _bf16_model():
    torch.set_default_dtype(torch.bfloat16)  # built in bf16 directly: no fp32 copy in the peak
    try:
        with torch.device("cuda"):
            return LlamaForCausalLM(LlamaConfig(**LLAMA2_7B))
    finally:
        torch.set_default_dtype(torch.float32)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--out", default="")
    p.add_argument("--skip-qlora", action="store_true")
    a = p.parse_args()
    torch.manual_seed(0)
    out = Path(tempfile.mkdtemp())
    s = FinetuneSettings(
        base_model="bench", max_steps=a.steps + 1, save_steps=10_000, logging_steps=1000, max_length=SEQ
    )
    rows = _data(s.batch_size * s.grad_accum * (a.steps + 1))
    results = []

    # 1. plain transformers Trainer + peft, default settings (peft's default LoRA targets, no checkpointing)
    from peft import LoraConfig, get_peft_model

    _fresh()
    model = get_peft_model(_bf16_model(), LoraConfig(task_type="CAUSAL_LM"))
    plain = TrainingArguments(
        output_dir=str(out / "plain"), per_device_train_batch_size=s.batch_size, max_steps=a.steps + 1,
        gradient_accumulation_steps=s.grad_accum, bf16=True, report_to="none", save_strategy="no", disable_tqdm=True,
    )  # fmt: skip
    results.append(_run("plain Trainer + peft defaults (bf16)", model, plain, rows, collator(_Tok())))
    del model

    # 2. rp_eval LoRA, bf16, its defaults (r 16 on all seven projections, gradient checkpointing)
    _fresh()
    base = _bf16_model()
    base.config.use_cache = False
    model = get_peft_model(base, lora_config(s, base, "llama"))
    args = training_arguments(s, str(out / "lora"), has_eval=False)
    results.append(_run("rp_eval LoRA (bf16)", model, args, rows, collator(_Tok())))
    del model, base

    # 3. the same without gradient checkpointing (what an 80 GB GPU can afford)
    _fresh()
    base = _bf16_model()
    s2 = s.model_copy(update={"gradient_checkpointing": False})
    model = get_peft_model(base, lora_config(s2, base, "llama"))
    results.append(
        _run("rp_eval LoRA (bf16, no checkpointing)", model, training_arguments(s2, str(out / "lora2"), False), rows,
             collator(_Tok()))
    )  # fmt: skip
    del model, base

    # 4. rp_eval QLoRA: the base loaded 4-bit from disk the way rp_eval.models.loading does
    if not a.skip_qlora:
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        _fresh()
        folder = out / "random-7b"
        _bf16_model().save_pretrained(folder)
        _fresh()
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)
        base = AutoModelForCausalLM.from_pretrained(
            folder, quantization_config=q, device_map={"": 0}, dtype=torch.bfloat16
        )
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=True)
        s3 = s.model_copy(update={"qlora": True})
        model = get_peft_model(base, lora_config(s3, base, "llama"))
        results.append(_run("rp_eval QLoRA (4-bit)", model, training_arguments(s3, str(out / "qlora"), False), rows,
                            collator(_Tok())))  # fmt: skip

    report = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "sequence": SEQ, "results": results}
    print(json.dumps(report, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
