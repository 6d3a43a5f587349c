"""Training runs on a tiny model on CPU: register, record, cancel and resume, fail cleanly, learn to stop."""

from __future__ import annotations

import time

import pytest

from rp_eval.chat.generate import GenerationSettings
from rp_eval.finetune import data, job
from rp_eval.finetune.config import FinetuneSettings
from rp_eval.finetune.stopcheck import held_prompts, stop_stats
from rp_eval.models import registry
from rp_eval.models.loading import ModelCache
from rp_eval.store import finetune as runs
from rp_eval.store import get_store

FAST = dict(batch_size=8, grad_accum=1, lora_dropout=0.0, warmup=0, max_length=256, logging_steps=5)


def test_short_run_learns_to_end_replies_with_eos(tiny_base):
    """The behavioural test: before, the random model almost never stops; after 80 LoRA steps on short,
    EOS-terminated replies it stops by itself clearly more often on held-out prompts, never spelling the EOS.
    (Measured over 3 model seeds x 2 sampling seeds: 0-8% before, 67-100% after.) All linear layers are adapted:
    on this 2-layer, 32-wide model the default q/v adapters alone do not move the output enough (0% -> 0%)."""
    s = FinetuneSettings(
        base_model=tiny_base, max_steps=80, learning_rate=3e-2, lora_r=16, eval_fraction=0.34, eval_steps=40,
        save_steps=80, stop_check_prompts=4, stop_check_tokens=16, target_modules=("all-linear",), **FAST,
    )  # fmt: skip
    run_id = job.start(s)
    last = job.wait(run_id)
    assert last.status == "done", last.log

    # registered as an adapter of its base, made by this run, files moved into place
    row = registry.get_model(last.adapter)
    assert row.kind == "adapter" and row.parents == [tiny_base] and row.made_by["finetune_run"] == run_id
    assert (job.adapters_dir() / last.adapter / "adapter_config.json").exists()
    assert not list(job.run_folder(run_id).glob("*.tmp"))

    stored = runs.get_run(get_store(), run_id)
    train = [x["loss"] for x in stored.losses if "loss" in x]
    assert stored.status == "done" and len(train) == 17 and any("eval_loss" in x for x in stored.losses)
    assert sum(train[-3:]) < sum(train[:3])

    # measured again here, independently of the run: the registered adapter loaded through the model cache
    # against its base, same held prompts (never trained on), same sampling
    _, held = data.split_eval(data.load_conversations(), s.eval_fraction, s.seed)
    prompts = held_prompts(held, 12)
    gen = GenerationSettings(max_new_tokens=64, temperature=0.7, seed=123)
    cache = ModelCache()
    stats = {}
    for name in (tiny_base, last.adapter):
        loaded = cache.get(name)
        stats[name] = stop_stats(loaded.model, loaded.tokenizer, loaded.format, prompts, "</s>", gen)
    before, after = stats[tiny_base], stats[last.adapter]
    print(f"natural-stop rate on {len(prompts)} held prompts: {before.natural_stop_rate} -> {after.natural_stop_rate}")
    assert after.natural_stop_rate >= 0.5 and after.natural_stop_rate >= before.natural_stop_rate + 0.4
    assert after.end_text_rate == 0.0
    check = stored.metrics["stop_check"]  # the run's own, smaller check (4 prompts, 16 tokens) is recorded
    assert check["adapter"]["prompts"] == check["base"]["prompts"] == 4


def test_cancel_keeps_a_checkpoint_and_resume_finishes(tiny_base):
    s = FinetuneSettings(
        base_model=tiny_base, max_steps=200, save_steps=1000, eval_fraction=0, stop_check_prompts=0, **FAST
    )
    run_id = job.start(s)
    deadline = time.time() + 60
    while job.stored_progress(run_id).step < 5 and time.time() < deadline:
        time.sleep(0.1)
    assert job.cancel(run_id)
    last = job.wait(run_id)
    assert last.status == "cancelled" and 5 <= last.step < 200
    assert job._last_checkpoint(run_id) is not None
    assert registry.get_store().get_model(f"{tiny_base}-rp-lora-{run_id}") is None  # nothing registered
    cancelled_at = last.step

    job.resume(run_id)
    done = job.wait(run_id)
    assert done.status == "done", done.log
    steps = [x["step"] for x in runs.get_run(get_store(), run_id).losses]
    assert steps == sorted(steps) and steps[-1] == 200
    assert "resuming" in "\n".join(done.log)
    after = [x for x in steps if x > cancelled_at]
    assert after and after[0] <= cancelled_at + 5  # continued from the checkpoint, not from step 0
    assert registry.get_model(done.adapter).parents == [tiny_base]


def test_unknown_target_module_fails_the_run_and_registers_nothing(tiny_base):
    s = FinetuneSettings(base_model=tiny_base, max_steps=2, target_modules=("nope_proj",), stop_check_prompts=0, **FAST)
    last = job.wait(job.start(s))
    assert last.status == "failed"
    error = runs.get_run(get_store(), last.run_id).metrics["error"]
    assert "nope_proj" in error and "q_proj" in error
    assert [r.name for r in registry.list_models()] == [tiny_base]
    assert not list(job.adapters_dir().iterdir())


def test_requests_refused_before_a_run_is_recorded(tiny_base, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(job.FinetuneError, match="QLoRA .* needs a CUDA GPU"):
        job.start(FinetuneSettings(base_model=tiny_base, qlora=True))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not json\n")
    with pytest.raises(data.DataError, match="line 1 is not JSON"):
        job.start(FinetuneSettings(base_model=tiny_base, data=str(bad)))
    with pytest.raises(registry.RegistryError, match="no registered model named 'ghost'"):
        job.start(FinetuneSettings(base_model="ghost"))
    with pytest.raises(job.FinetuneError, match="already registered"):
        job.start(FinetuneSettings(base_model=tiny_base, adapter_name=tiny_base))
    assert runs.list_runs(get_store()) == []


def test_follow_gives_the_final_state_of_a_run_that_ends_between_two_snapshots(monkeypatch):
    """The page and `rp-eval finetune` show the last snapshot `follow` yields: a run that ends while the caller
    still holds a "running" snapshot must get one more, final one (seen in CI: the page stayed at "running ·
    step 8/8" after the run was done, and the CLI would have exited 2)."""
    live = job.Progress(run_id=9_001, status="running", step=8, total=8)
    monkeypatch.setitem(job._jobs, 9_001, type("Running", (), {"progress": live})())
    snapshots = job.follow(9_001, poll_seconds=0)
    assert next(snapshots).status == "running"
    live.status, live.adapter = "done", "tiny-base-rp-lora-9001"  # the run ends while the caller holds that one
    rest = list(snapshots)
    assert [p.status for p in rest] == ["done"] and rest[-1].adapter == "tiny-base-rp-lora-9001"
