"""The runner on a tiny random model: batches through generate_batch, stored, cached, resumable, failures kept apart."""

from __future__ import annotations

import pytest

from rp_eval.chat import generate as gen
from rp_eval.evaluate import runner
from rp_eval.evaluate.fitness import fitness, fitness_rows
from rp_eval.evaluate.runner import EvalConfig, EvalResult, Progress, evaluate, run_evaluation
from rp_eval.store import evaluation as db
from rp_eval.store import get_store

SMALL = dict(limit=6, batch_size=4, generation=gen.GenerationSettings(max_new_tokens=12, temperature=0.7, seed=None))


@pytest.fixture
def counted(monkeypatch):
    """generate_batch as the runner sees it, counting the conversations it is asked for."""
    calls: list[int] = []
    real = gen.generate_batch

    def spy(model, tokenizer, fmt, conversations, settings, **options):
        calls.append(len(conversations))
        assert options.get("priority") == gen.BATCH, "an evaluation's batches queue behind the page and the API"
        return real(model, tokenizer, fmt, conversations, settings, **options)

    monkeypatch.setattr(runner, "generate_batch", spy)
    return calls


def test_every_item_is_generated_scored_and_stored(tiny_registered, task, counted):
    events = list(run_evaluation(EvalConfig(models=[tiny_registered], **SMALL), task=task))
    result = events[-1]
    assert isinstance(result, EvalResult) and not result.failed
    assert all(isinstance(e, Progress) for e in events[:-1]) and events[-2].done == events[-2].total == 6
    assert counted == [4, 2]
    assert len(result.rows) == 6 and {r.item_id for r in result.rows} == {i.id for i in task.select("dev", 6, 0)}
    for row in result.rows:
        assert row.finish_reason in ("eos", "stop_string", "length_trimmed", "length")
        assert 0.0 <= row.combined <= 1.0 and "natural_stop" in row.metrics
    stored = db.replies(get_store(), result.runs[tiny_registered])
    assert len(stored) == 6 and db.get_run(get_store(), result.runs[tiny_registered]).status == "done"


def test_a_second_run_reuses_the_stored_replies(tiny_registered, task, counted):
    first = evaluate(EvalConfig(models=[tiny_registered], **SMALL), task=task)
    counted.clear()
    again = evaluate(EvalConfig(models=[tiny_registered], **SMALL), task=task)
    assert counted == []
    assert [r.text for r in again.rows] == [r.text for r in first.rows]
    other = evaluate(EvalConfig(models=[tiny_registered], seed=5, **SMALL), task=task)
    assert counted and other.runs[tiny_registered] != first.runs[tiny_registered]


def test_a_crash_loses_at_most_the_batch_in_flight(tiny_registered, task, monkeypatch):
    real, calls = gen.generate_batch, []

    def crash_second(model, tokenizer, fmt, conversations, settings, **options):
        calls.append(len(conversations))
        if len(calls) == 2:
            raise RuntimeError("CUDA out of memory")
        return real(model, tokenizer, fmt, conversations, settings, **options)

    monkeypatch.setattr(runner, "generate_batch", crash_second)
    broken = evaluate(EvalConfig(models=[tiny_registered], **SMALL), task=task)
    assert broken.failed == {tiny_registered: "CUDA out of memory"} and broken.rows == []
    run_id = broken.runs[tiny_registered]
    assert len(db.replies(get_store(), run_id)) == 4 and db.get_run(get_store(), run_id).status == "failed"
    monkeypatch.setattr(runner, "generate_batch", real)
    resumed = evaluate(EvalConfig(models=[tiny_registered], **SMALL), task=task)
    assert not resumed.failed and len(resumed.rows) == 6 and resumed.runs[tiny_registered] == run_id


def test_a_model_that_fails_does_not_stop_the_others(tiny_registered, task):
    result = evaluate(EvalConfig(models=["no-such-model", tiny_registered], **SMALL), task=task)
    assert "no registered model named 'no-such-model'" in result.failed["no-such-model"]
    assert {r.model for r in result.rows} == {tiny_registered}


def test_empty_replies_are_kept_and_counted(tiny_registered, task, monkeypatch):
    def empty(model, tokenizer, fmt, conversations, settings, **options):
        return [gen.GenerationResult("", "</s>", "eos", False, 5, 1, 0.1, 0.1, 0.0) for _ in conversations]

    monkeypatch.setattr(runner, "generate_batch", empty)
    events = list(run_evaluation(EvalConfig(models=[tiny_registered], **SMALL), task=task))
    assert any("4 empty" in e.message for e in events if isinstance(e, Progress))
    rows = events[-1].rows
    assert len(rows) == 6 and all(r.metrics["empty_reply"] == 1.0 for r in rows)


def test_fitness_is_one_number_and_the_same_for_the_same_seed(tiny_llama, task):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rp_eval.chat.formats import FORMATS

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama)
    opts = dict(limit=5, task=task, generation=gen.GenerationSettings(max_new_tokens=10, temperature=0.8))
    a = fitness(model, tok, FORMATS["llama2"], seed=3, **opts)
    b = fitness(model, tok, FORMATS["llama2"], seed=3, **opts)
    assert a == b and 0.0 <= a <= 1.0
    rows = fitness_rows(model, tok, FORMATS["llama2"], seed=4, **opts)
    assert len(rows) == 5 and {r.item_id for r in rows} == {i.id for i in task.select("dev", 5, 4)}


def test_optional_judge_and_reference_metrics(tiny_registered, task):
    config = EvalConfig(models=[tiny_registered], judge_model=tiny_registered, reference_model=tiny_registered, **SMALL)
    rows = evaluate(config, task=task).rows
    assert all(0.0 < r.metrics["ref_likelihood"] <= 1.0 for r in rows if r.text)
    assert all(0.0 <= r.metrics["judge"] <= 1.0 for r in rows)  # an expected grade, not one sampled digit
    assert len({r.metrics["judge"] for r in rows}) > 1
    plain = evaluate(EvalConfig(models=[tiny_registered], **SMALL), task=task).rows
    assert "ref_likelihood" in plain[0].metrics  # stored with the replies, so a later run shows them too


def test_a_judge_that_is_not_registered_stops_the_run_before_anything_is_stored(tiny_registered, task):
    from rp_eval.evaluate.judge import JudgeError
    from rp_eval.store import evaluation as db
    from rp_eval.store import get_store

    with pytest.raises(JudgeError, match="no registered model named 'nobody'"):
        evaluate(EvalConfig(models=[tiny_registered], judge_model="nobody", **SMALL), task=task)
    assert db.list_runs(get_store()) == []


def test_progress_lines_and_failures_are_worded_in_the_pages_language(tiny_registered, task, monkeypatch):
    import re

    from rp_eval.ui import evaluate_tab, locale
    from tests.japanese import english_words, japanese

    events = list(run_evaluation(EvalConfig(models=["no-such-model", tiny_registered], **SMALL), task=task))
    lines = [e.message for e in events if isinstance(e, Progress)]
    assert lines[0] == "no-such-model: loading" and f"{tiny_registered}: 6/12 replies" in lines  # the CLI: English
    assert lines[1].startswith("no-such-model failed: no registered model named 'no-such-model'")
    monkeypatch.setattr(locale, "language", lambda: "ja")
    shown = [re.sub(r"<[^>]+>", " ", evaluate_tab._bar(1, 2, locale.error_text(m))) for m in lines]
    shown.append(locale.t("ev_failed", model="no-such-model", why=events[-1].failed["no-such-model"]))
    for text in shown:  # the progress bar's line and the failure under the table, as the Japanese page shows them
        assert japanese(text) and english_words(text, {"no-such-model", tiny_registered}) == [], text
