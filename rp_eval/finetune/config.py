"""Settings of a fine-tuning run (frozen, validated), with defaults sized for a 7B model on one 24–80 GB GPU."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# LoRA target modules per architecture (model_type); "all-linear" is peft's own "every linear but the head".
TARGET_MODULES: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "gemma2": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "gpt_neox": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
}
SCHEDULES = ("cosine", "linear", "constant_with_warmup")


class FinetuneSettings(BaseModel, frozen=True):
    base_model: str = Field(min_length=1)  # a registered model name
    data: str = ""  # a JSONL file, a saved `datasets` folder or a hub dataset id; "" = prompts/finetune
    data_split: str = "train"
    adapter_name: str = ""  # default: "<base>-rp-lora-<run>"
    # LoRA
    lora_r: int = Field(16, ge=1, le=1024)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = ()  # empty: TARGET_MODULES for the architecture, else "all-linear"
    qlora: bool = False  # 4-bit base through bitsandbytes; needs a CUDA GPU
    gradient_checkpointing: bool = True
    # optimisation
    learning_rate: float = Field(2e-4, gt=0.0, le=1.0)
    schedule: Literal["cosine", "linear", "constant_with_warmup"] = "cosine"
    warmup: float = Field(0.03, ge=0.0)  # a fraction of the steps (< 1) or a number of steps
    epochs: float = Field(3.0, gt=0.0)
    max_steps: int = Field(-1, ge=-1)  # > 0 overrides epochs
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(4, ge=1)
    seed: int = 0
    eval_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    # data
    max_length: int = Field(1024, ge=8)
    overflow: Literal["drop", "truncate"] = "truncate"
    # bookkeeping
    logging_steps: int = Field(5, ge=1)
    save_steps: int = Field(50, ge=1)
    eval_steps: int = Field(50, ge=1)
    stop_check_prompts: int = Field(8, ge=0)  # held prompts to measure the natural-stop rate on after training
    stop_check_tokens: int = Field(64, ge=1)
