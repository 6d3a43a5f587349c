"""The training itself: load the base, encode the data, wrap with peft LoRA, run transformers' Trainer,
save the adapter, register it, and measure whether it stops by itself. Called by `job._run` in its thread."""

from __future__ import annotations

import time

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from rp_eval.chat.generate import GenerationSettings
from rp_eval.errors import Said
from rp_eval.finetune import data as datalib
from rp_eval.finetune import labels
from rp_eval.finetune.config import ALL_LINEAR, FinetuneSettings
from rp_eval.finetune.job import FinetuneError, _Job, default_targets, install, remove_tmp, run_folder
from rp_eval.finetune.memory import checkpointing, gpu_bytes, load_for_training
from rp_eval.finetune.plan import Plan, PlanError, plan
from rp_eval.finetune.preview import tokenizer_and_format
from rp_eval.finetune.stopcheck import stop_stats, task_prompts
from rp_eval.models import registry
from rp_eval.store import finetune as runs
from rp_eval.store import get_store


class _Report(TrainerCallback):
    """Trainer events → the job's progress and the run's record; cancel → save a checkpoint and stop."""

    def __init__(self, job: _Job) -> None:
        self.job = job

    def on_train_begin(self, args, state, control, **kwargs):
        self.job.progress.total = state.max_steps
        self.job.first_step = state.global_step
        self.job.started = time.perf_counter()
        runs.update_run(get_store(), self.job.progress.run_id, metrics={"total_steps": state.max_steps})

    def on_step_end(self, args, state, control, **kwargs):
        p = self.job.progress
        p.step, p.epoch = state.global_step, round(state.epoch or 0.0, 3)
        done = state.global_step - self.job.first_step
        if done > 0:
            p.eta_seconds = round((time.perf_counter() - self.job.started) / done * (state.max_steps - p.step), 1)
        if self.job.cancel.is_set():
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        points = [
            {"step": state.global_step, "epoch": round(state.epoch or 0.0, 3), key: round(float(logs[key]), 4)}
            for key in ("loss", "eval_loss")
            if key in logs
        ]
        if points:
            self.job.progress.losses += points
            runs.update_run(get_store(), self.job.progress.run_id, losses=points)
            losses = ", ".join(f"{k} {logs[k]:.4f}" for k in logs if "loss" in k)
            self.job.say(Said("ft_log_step", step=points[0]["step"], losses=losses))


def _targets(model, wanted: tuple[str, ...], model_type: str):
    if not wanted:
        return default_targets(model_type)
    if wanted == (ALL_LINEAR,):
        return ALL_LINEAR
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise FinetuneError(
            f"unknown target module(s) {', '.join(unknown)} for this model; its linear layers are: {', '.join(sorted(names))}"
        )
    return list(wanted)


# transformers 5.2x renamed gradient_checkpointing to activation_checkpointing and group_by_length to
# train_sampling_strategy; speak whichever the installed one has
_FIELDS = TrainingArguments.__dataclass_fields__
_CHECKPOINTING = "activation_checkpointing" if "activation_checkpointing" in _FIELDS else "gradient_checkpointing"
_GROUPED = (
    {"train_sampling_strategy": "group_by_length"}
    if "train_sampling_strategy" in _FIELDS
    else {"group_by_length": True}
)


def lora_config(s: FinetuneSettings, model, model_type: str):
    from peft import LoraConfig

    return LoraConfig(
        r=s.lora_r,
        lora_alpha=s.lora_alpha,
        lora_dropout=s.lora_dropout,
        target_modules=_targets(model, s.target_modules, model_type),
        task_type="CAUSAL_LM",
    )


def training_arguments(
    s: FinetuneSettings, output_dir: str, has_eval: bool, checkpoint_activations: bool, plan: Plan | None = None
) -> TrainingArguments:
    """The Trainer's arguments for a run (also what benchmarks/finetune_speed.py measures). Batches hold
    conversations of similar length (length-grouped sampling; the collator pads to the longest in the batch,
    rounded up to 64 tokens on a GPU), so little of a batch is padding; `checkpoint_activations` comes from `memory.checkpointing`."""
    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps,
        learning_rate=s.learning_rate,
        lr_scheduler_type=s.schedule,
        warmup_steps=s.warmup,
        **{_CHECKPOINTING: checkpoint_activations},
        **_GROUPED,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        seed=s.seed,
        logging_steps=s.logging_steps,
        logging_first_step=True,  # a loss point at step 1: the plot draws a line from the start
        save_strategy="steps",
        save_steps=s.save_steps or (plan.save_steps if plan else 50),
        save_total_limit=2,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=s.eval_steps or (plan.eval_steps if plan and plan.eval_steps else 50),
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_pin_memory=cuda,
    )


def _as_dataset(examples: list[labels.Example]):
    import datasets

    return datasets.Dataset.from_list(
        [{"input_ids": e.input_ids, "labels": e.labels, "attention_mask": [1] * len(e.input_ids)} for e in examples]
    )


def train(job: _Job, s: FinetuneSettings, checkpoint: str | None) -> None:
    from peft import get_peft_model, prepare_model_for_kbit_training

    run_id = job.progress.run_id
    store = get_store()
    base = registry.get_model(s.base_model)
    job.say(Said("ft_log_loading_qlora" if s.qlora else "ft_log_loading", model=base.name))
    try:
        model = load_for_training(base, s.qlora)
        tokenizer, fmt = tokenizer_and_format(base.name)
    except (OSError, ValueError) as err:
        raise FinetuneError(key="err_ft_load", name=base.name, detail=str(err).splitlines()[0]) from err
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # pad = eos: the collator still keeps EOS in the labels
    end = labels.check_end_marker(tokenizer, fmt)
    job.say(Said("ft_format_marker", format=fmt.name, marker=end.describe()))

    conversations = datalib.load_conversations(s.data, s.data_split)
    train_convs, eval_convs = datalib.split_eval(conversations, s.eval_fraction, s.seed)
    train_set = labels.encode_all(tokenizer, fmt, train_convs, s.max_length, s.overflow)
    eval_set = labels.encode_all(tokenizer, fmt, eval_convs, s.max_length, s.overflow) if eval_convs else None
    if eval_set:
        job.say(Said("ft_log_sets_eval", train=train_set.summary(), eval=eval_set.summary()))
    else:
        job.say(Said("ft_log_sets", train=train_set.summary()))
    counts = {"train": train_set.counts(), **({"eval": eval_set.counts()} if eval_set else {})}
    held = len(eval_set.examples) if eval_set else 0
    try:
        steps = plan(s, len(train_set.examples) + held, held)
    except PlanError as err:
        raise FinetuneError(str(err)) from err
    job.say(Said("ft_log_plan", plan=steps.describe()))
    runs.update_run(store, run_id, metrics={"data": counts, "total_steps": steps.total_steps})

    if s.qlora:  # casts norms to fp32, enables input grads; checkpointing is on unless asked off (memory.py)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=s.gradient_checkpointing != "off")
    lora = lora_config(s, model, base.model_type)
    model = get_peft_model(model, lora)
    trainable, total = model.get_nb_trainable_parameters()
    job.say(
        Said(
            "ft_log_lora", r=s.lora_r, targets=str(lora.target_modules), trainable=f"{trainable:,}", total=f"{total:,}"
        )
    )
    ckpt = checkpointing(s, model.config, weight_bytes, trainable, gpu_bytes())
    job.say(ckpt.reason)
    if ckpt.on:
        model.config.use_cache = False
    folder = str(run_folder(run_id) / "checkpoints")
    args = training_arguments(s, folder, eval_set is not None, ckpt.on, steps)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=_as_dataset(train_set.examples),
        eval_dataset=_as_dataset(eval_set.examples) if eval_set else None,
        data_collator=labels.collator(tokenizer, labels.pad_multiple()),
        callbacks=[_Report(job)],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to the run's log instead of stdout
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    summary = {
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_loss": round(result.training_loss, 4),
        "steps": trainer.state.global_step,
    }
    if job.cancel.is_set():
        job.say(Said("ft_log_cancelled", step=trainer.state.global_step))
        runs.update_run(store, run_id, status="cancelled", metrics=summary)
        job.progress.status = "cancelled"
        return
    _finish(job, s, model, tokenizer, fmt, end, summary)


def _finish(job: _Job, s: FinetuneSettings, model, tokenizer, fmt, end, summary: dict) -> None:
    run_id = job.progress.run_id
    store = get_store()
    name = s.adapter_name or f"{s.base_model}-rp-lora-{run_id}"
    tmp = run_folder(run_id) / "adapter.tmp"
    remove_tmp(tmp)
    try:
        model.save_pretrained(str(tmp))
        final = install(tmp, name)
    except BaseException:
        remove_tmp(tmp)  # a half-written adapter (a full disk, say) is not left behind
        raise
    try:
        registry.add_model(
            str(final),
            name,
            kind="adapter",
            made_by={
                "finetune_run": run_id,
                "data": s.data or "prompts/finetune",
                "settings": s.model_dump(mode="json"),
            },
            notes=f"LoRA fine-tune of {s.base_model} (run {run_id})",
        )
    except Exception:
        remove_tmp(final)  # nothing registered half-done
        raise
    job.say(Said("ft_log_registered", name=name, path=final))
    metrics = {**summary}
    if s.stop_check_prompts:
        model.eval()
        gen = GenerationSettings(max_new_tokens=s.stop_check_tokens, temperature=0.7, seed=s.seed)
        prompts = task_prompts(s.stop_check_prompts, s.seed)
        tuned = stop_stats(model, tokenizer, fmt, prompts, end.text, gen)
        with model.disable_adapter():
            base = stop_stats(model, tokenizer, fmt, prompts, end.text, gen)
        metrics["stop_check"] = {"adapter": tuned.to_dict(), "base": base.to_dict()}
        job.say(
            Said(
                "ft_log_stop_check",
                base=f"{base.natural_stop_rate:.0%}",
                tuned=f"{tuned.natural_stop_rate:.0%}",
                base_sentences=base.mean_sentences,
                tuned_sentences=tuned.mean_sentences,
                prompts=len(prompts),
            )
        )
    if s.merge_full:
        metrics.update(_merge(job, name, model))
    runs.update_run(store, run_id, status="done", adapter=name, metrics=metrics)
    job.progress.metrics.update(metrics)
    job.progress.adapter = name
    job.progress.status = "done"


def _merge(job: _Job, adapter: str, model) -> dict:
    """The optional full merge. The adapter is registered and usable whatever happens here, so a failed merge
    is recorded on a finished run (retry with `rp-eval finetune merge --adapter-name NAME`)."""
    from rp_eval.finetune.job import _explain
    from rp_eval.finetune.merge_full import merge_full

    job.say(Said("ft_log_merging"))
    try:
        merged = merge_full(adapter, model=model)
    except Exception as err:  # noqa: BLE001 - recorded on the run; the adapter stands
        reason = _explain(err)
        job.say(Said("ft_log_merge_failed", reason=reason))
        return {"merge_error": reason}
    job.say(Said("ft_log_merged", name=merged))
    return {"merged": merged}
