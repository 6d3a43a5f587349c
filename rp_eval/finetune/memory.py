"""Memory for a training run: when gradient checkpointing is needed, and how the base is loaded (bf16 or 4-bit).

The checkpointing rule ("auto"), written down:
- QLoRA: on. A person picks 4-bit to save memory; checkpointing is the other half of that saving.
- no CUDA GPU: off (CPU runs are tiny checks; nothing is measured there).
- LoRA on a GPU: on only when the estimated peak without it exceeds 85% of the GPU's memory, where
  peak = weights + 16 bytes per trainable parameter (fp32 adapter, grad, two Adam moments)
       + 60 bytes × hidden size × layers × tokens per micro-batch (the activations kept for backward)
       + 12 bytes × vocabulary × tokens per micro-batch (logits in bf16, their fp32 copy and gradient),
  tokens per micro-batch = batch size × cut-off (the worst batch; padding is to the longest in the batch).
  60 bytes is measured, not derived: a 7B Llama-2 shape, batch 4 × 512, LoRA on all seven projections peaked at
  28.65 GiB without checkpointing against 12.6 GiB of weights on an H100 (benchmarks/finetune-h100.json).
  So a 7B model at batch 4 × 1024 (about 47 GB) trains without checkpointing on an 80 GB GPU, with it on 24–48 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rp_eval.errors import Said
from rp_eval.finetune.config import FinetuneSettings

ACTIVATION_BYTES = 60  # per hidden unit, layer and token, without checkpointing (measured, see above)
LOGIT_BYTES = 12  # per vocabulary entry and token
HEADROOM = 0.85  # of the GPU's memory: the allocator's fragmentation and CUDA's own use take the rest


@dataclass(frozen=True)
class Checkpointing:
    on: bool
    reason: str  # a `Said`: the run's log words it in the page's language


def estimate_peak_bytes(config, s: FinetuneSettings, weight_bytes: int, trainable: int) -> int:
    """Bytes a LoRA run needs without gradient checkpointing (the rule above)."""
    tokens = s.batch_size * s.max_length
    layers = getattr(config, "num_hidden_layers", 1)
    activations = ACTIVATION_BYTES * config.hidden_size * layers * tokens
    logits = LOGIT_BYTES * config.vocab_size * tokens
    return weight_bytes + 16 * trainable + activations + logits


def checkpointing(
    s: FinetuneSettings, config, weight_bytes: int, trainable: int, gpu_bytes: int | None
) -> Checkpointing:
    """Whether to checkpoint activations, and why (the reason goes to the run's log)."""
    if s.gradient_checkpointing != "auto":
        on = s.gradient_checkpointing == "on"
        return Checkpointing(on, Said("ft_ckpt_asked_on" if on else "ft_ckpt_asked_off"))
    if s.qlora:
        return Checkpointing(True, Said("ft_ckpt_qlora"))
    if not gpu_bytes:
        return Checkpointing(False, Said("ft_ckpt_no_gpu"))
    need = estimate_peak_bytes(config, s, weight_bytes, trainable)
    on = need > HEADROOM * gpu_bytes
    return Checkpointing(
        on,
        Said(
            "ft_ckpt_auto_on" if on else "ft_ckpt_auto_off",
            need=f"{need / 2**30:.1f}",
            share=f"{HEADROOM:.0%}",
            gpu=f"{gpu_bytes / 2**30:.0f}",
            room=f"{HEADROOM * gpu_bytes / 2**30:.1f}",
        ),
    )


def gpu_bytes() -> int | None:
    return torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None


def qlora_quantization():
    """The QLoRA paper's 4-bit setting: NF4 weights, double quantisation of the scales, bf16 compute."""
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def load_for_training(row, qlora: bool):
    """The base model to train on: bf16 on a GPU (fp32 on the CPU), or 4-bit NF4 for QLoRA. Loaded here rather
    than through `rp_eval.models.loading.load`, which builds the chat decoding engine and quantises 4-bit
    without NF4 or double quantisation."""
    from transformers import AutoModelForCausalLM

    from rp_eval.models.loading import pick_device

    device, dtype = pick_device()
    kwargs: dict = {"dtype": dtype, "trust_remote_code": row.trust_remote_code}
    if qlora:
        kwargs |= {"quantization_config": qlora_quantization(), "device_map": {"": 0}}
    model = AutoModelForCausalLM.from_pretrained(row.source, **kwargs)
    return model if qlora else model.to(device)
