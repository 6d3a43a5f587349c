"""The run's plan: said before it starts, the number of steps the Trainer really runs, meaningful on the shipped
set with the defaults; a warm-up as long as the run refused before anything is recorded; a loss line from the
first steps; the stop check on 32 prompts of the evaluation task."""

from __future__ import annotations

import pytest

from rp_eval.evaluate.task import load_task
from rp_eval.finetune import job
from rp_eval.finetune.config import FinetuneSettings
from rp_eval.finetune.plan import PlanError, plan, plan_data
from rp_eval.finetune.stopcheck import task_prompts
from rp_eval.store import finetune as runs
from rp_eval.store import get_store


def test_the_defaults_train_the_shipped_set_for_a_meaningful_number_of_steps():
    p = plan_data(FinetuneSettings(base_model="x"))
    assert (p.conversations, p.train, p.held) == (36, 32, 4)
    assert p.total_steps >= 30 and p.steps_per_epoch == 8 and 1 <= p.warmup_steps < p.total_steps // 4
    assert "40 optimizer steps" in p.describe()


@pytest.mark.parametrize(
    ("change", "steps"),
    [
        (dict(batch_size=4, grad_accum=4, epochs=3), 6),  # the old defaults: 32 / 16 = 2 steps, 3 epochs
        (dict(batch_size=5, grad_accum=3, epochs=2.5), 8),  # 7 batches -> 3 steps per epoch, ceil(7.5)
        (dict(max_steps=17), 17),
    ],
)
def test_the_step_count_follows_the_trainers_rule(change, steps):
    assert plan(FinetuneSettings(base_model="x", warmup=0, **change), 36, 4).total_steps == steps


def test_a_warm_up_as_long_as_the_run_is_refused_before_a_run_is_recorded(tiny_base):
    with pytest.raises(PlanError, match=r"warm-up \(20 steps\) is not shorter than the run \(6 optimizer steps\)"):
        plan(FinetuneSettings(base_model="x", warmup=20, max_steps=6), 36, 4)
    with pytest.raises(job.FinetuneError, match="warm-up"):
        job.start(FinetuneSettings(base_model=tiny_base, warmup=20, max_steps=6))
    assert runs.list_runs(get_store()) == []
    assert plan(FinetuneSettings(base_model="x", warmup=0.5, max_steps=6), 36, 4).warmup_steps == 3


def test_stop_check_prompts_come_from_the_evaluation_task():
    task = load_task()
    prompts = task_prompts(32)
    dev = {i.id for i in task.select("dev")}
    assert len(prompts) == 32 and len(dev) >= 32
    for messages in prompts:
        assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert len(task_prompts(len(task.items) + 50)) == len(task.items) and task_prompts(0) == []


def test_a_default_run_does_what_its_plan_said(tiny_base):
    """Default settings except the lengths a tiny CPU model needs: the steps announced are the steps run, the
    loss has points from step 1, and the stop check ran on 32 prompts of the evaluation task, base and adapter."""
    s = FinetuneSettings(base_model=tiny_base, max_length=256, stop_check_tokens=8)
    announced = plan_data(s)
    last = job.wait(job.start(s))
    assert last.status == "done", last.log
    stored = runs.get_run(get_store(), last.run_id)
    assert stored.metrics["steps"] == stored.metrics["total_steps"] == announced.total_steps == 40
    assert any(line.startswith("plan: 40 optimizer steps") for line in stored.log.splitlines())
    train = [x["step"] for x in stored.losses if "loss" in x]
    assert train[:3] == [1, 2, 3] and len(train) == 40
    assert [x["step"] for x in stored.losses if "eval_loss" in x] == [5, 10, 15, 20, 25, 30, 35, 40]
    check = stored.metrics["stop_check"]
    assert check["base"]["prompts"] == check["adapter"]["prompts"] == 32
    assert "32 prompts of the evaluation task" in stored.log
