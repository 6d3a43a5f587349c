"""Settings of a fine-tuning run (frozen, validated), with defaults sized for a 7B model on one 24–80 GB GPU."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

# LoRA target modules per architecture (model_type): the attention's query and value projections, peft's own
# default for these families. On an H100 (7B Llama-2 shape, 512 tokens, no checkpointing) they train at the plain
# peft baseline's speed (11,480-12,107 tokens/s against 11,976), where all seven projections ran at 6,901
# (benchmarks/README.md). "all-linear" (peft: every linear layer but the head) gives the adapter more capacity
# for a style change, at that cost.
TARGET_MODULES: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "gemma2": ("q_proj", "v_proj"),
    "gpt_neox": ("query_key_value",),
}
ALL_LINEAR = "all-linear"
SCHEDULES = ("cosine", "linear", "constant_with_warmup")
CHECKPOINTING = ("auto", "on", "off")  # "auto": the rule in rp_eval.finetune.memory


class FinetuneSettings(BaseModel, frozen=True):
    base_model: str = Field(min_length=1)  # a registered model name
    data: str = ""  # a JSONL file, a saved `datasets` folder or a hub dataset id; "" = prompts/finetune
    data_split: str = "train"
    adapter_name: str = ""  # default: "<base>-rp-lora-<run>"
    # LoRA
    lora_r: int = Field(16, ge=1, le=1024)
    lora_alpha: int = Field(32, ge=1)
    # 0: peft then skips the dropout copy of every adapted layer's input (on an H100, 0.05 cost 2 GB with all seven
    # projections adapted, and 0-7% of the speed over two runs; benchmarks/README.md)
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: tuple[
        str, ...
    ] = ()  # empty: TARGET_MODULES for the architecture, else "all-linear"; or ("all-linear",)
    qlora: bool = False  # 4-bit nf4 base (double quantisation, bf16 compute) through bitsandbytes; needs CUDA
    gradient_checkpointing: Literal["auto", "on", "off"] = "auto"  # auto: on only when memory needs it
    merge_full: bool = False  # after training, also save base + adapter merged into a full model
    # optimisation
    learning_rate: float = Field(2e-4, gt=0.0, le=1.0)
    schedule: Literal["cosine", "linear", "constant_with_warmup"] = "cosine"
    # The defaults train the shipped set (36 conversations, 32 trained on) for 40 optimizer steps: 8 per epoch
    # at a batch of 4, five epochs. (Batch 4 × accumulation 4 over three epochs was 6 steps: too few to move.)
    warmup: float = Field(0.05, ge=0.0)  # a fraction of the steps (< 1) or a number of steps; refused if >= the run
    epochs: float = Field(5.0, gt=0.0)
    max_steps: int = Field(-1, ge=-1)  # > 0 overrides epochs
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    seed: int = 0
    eval_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    # data
    max_length: int = Field(1024, ge=8)
    overflow: Literal["drop", "truncate"] = "truncate"
    # bookkeeping
    logging_steps: int = Field(1, ge=1)  # the loss is also logged at the first step, so the plot has a line at once
    save_steps: int = Field(0, ge=0)  # 0: a checkpoint every quarter of the run (rp_eval.finetune.plan)
    eval_steps: int = Field(0, ge=0)  # 0: the held-out loss eight times over the run
    # prompts of the evaluation task's dev split the natural-stop rate is measured on, before and after training
    stop_check_prompts: int = Field(32, ge=0)
    stop_check_tokens: int = Field(64, ge=1)

    @field_validator("gradient_checkpointing", mode="before")
    @classmethod
    def _on_off(cls, value):
        """Runs stored before "auto" existed said true / false."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value
