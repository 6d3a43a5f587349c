"""Real merges with mergekit on tiny models: every method runs, the result loads and generates, the ends of
linear and slerp are the inputs, and a refused, failed or cancelled merge leaves nothing behind."""

from __future__ import annotations

import threading
from collections import namedtuple

import pytest
import torch
from safetensors.torch import load_file

from rp_eval import settings
from rp_eval.chat.generate import GenerationSettings, generate
from rp_eval.merge import form, recipe
from rp_eval.merge import run as merge_run
from rp_eval.merge.methods import method_names
from rp_eval.models.loading import ModelCache
from rp_eval.models.registry import get_model, list_models
from tests.merge.test_recipe import count


def _weights(folder) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def _merge(text: str, name: str):
    return merge_run.merge_all(text, name)


def _leftovers() -> list:
    merged = settings.models_dir() / "merged"
    return [p.name for p in merged.iterdir() if p.name.startswith(".tmp")] if merged.exists() else []


def test_every_method_runs_and_has_no_nan(registered):
    models = ["llama-a", "llama-b", "llama-c"]
    for method in method_names():
        text = recipe.to_yaml(form.from_form(form.defaults(method, models[: count(method)])))
        done = _merge(text, f"m-{method}")
        row = get_model(f"m-{method}")
        assert row.kind == "merged" and done.model == row.name
        assert set(row.parents) <= set(models) and row.parents
        assert row.made_by["method"] == method and "merge_method: " + method in row.made_by["recipe"]
        tensors = _weights(settings.models_dir() / "merged" / f"m-{method}")
        assert tensors and all(torch.isfinite(t.float()).all() for t in tensors.values()), method
    assert _leftovers() == []


def test_merged_model_loads_generates_and_has_card(registered):
    text = recipe.to_yaml(form.from_form(form.defaults("ties", ["llama-a", "llama-b", "llama-c"])))
    steps = list(merge_run.merge(text, "ties-mix"))
    assert [s.stage for s in steps][0] == "checking" and steps[-1].stage == "done"
    fractions = [s.fraction for s in steps if s.stage == "merging"]
    assert fractions and fractions == sorted(fractions) and fractions[-1] < 1
    folder = settings.models_dir() / "merged" / "ties-mix"
    card = (folder / "README.md").read_text()
    assert "llama-a" in card and "ties" in card
    assert recipe.parse((folder / "rp_eval_recipe.yaml").read_text()).merge_method == "ties"
    loaded = ModelCache(budget_bytes=2**30).get("ties-mix")
    result = generate(
        loaded.model, loaded.tokenizer, loaded.format, [{"role": "user", "content": "こんにちは"}],
        GenerationSettings(max_new_tokens=8, temperature=0),
    )  # fmt: skip
    assert result.new_tokens > 0 and result.finish_reason in ("eos", "stop_string", "length", "length_trimmed")


def test_linear_one_zero_is_the_first_model(registered):
    text = (
        "models:\n- model: llama-a\n  parameters: {weight: 1.0}\n- model: llama-b\n  parameters: {weight: 0.0}\n"
        "merge_method: linear\ndtype: float32\n"
    )
    _merge(text, "lin")
    a, out = _weights(registered["llama-a"]), _weights(settings.models_dir() / "merged" / "lin")
    assert a.keys() == out.keys()
    assert all(torch.equal(a[k].float(), out[k].float()) for k in a)


@pytest.mark.parametrize(("t", "end"), [(0, "llama-a"), (1, "llama-b")])
def test_slerp_ends_are_the_inputs(registered, t, end):
    text = (
        "models:\n- model: llama-a\n- model: llama-b\nmerge_method: slerp\nbase_model: llama-a\n"
        f"parameters: {{t: {t}}}\ndtype: float32\n"
    )
    _merge(text, f"slerp-{t}")
    want, out = _weights(registered[end]), _weights(settings.models_dir() / "merged" / f"slerp-{t}")
    other = _weights(registered["llama-b" if end == "llama-a" else "llama-a"])
    for k in want:
        assert torch.allclose(want[k].float(), out[k].float(), atol=1e-6), k
    assert any(not torch.allclose(other[k].float(), out[k].float()) for k in want)


def test_incompatible_pair_is_refused_before_work(registered):
    text = (
        "models:\n- model: llama-a\n- model: mistral\nmerge_method: slerp\nbase_model: llama-a\nparameters: {t: 0.5}\n"
    )
    with pytest.raises(recipe.RecipeError, match="LlamaForCausalLM vs MistralForCausalLM"):
        _merge(text, "bad")
    assert "bad" not in [r.name for r in list_models()]
    assert not (settings.models_dir() / "merged" / "bad").exists()


def test_cancel_and_failure_leave_nothing(registered, monkeypatch):
    text = recipe.to_yaml(form.from_form(form.defaults("dare_ties", ["llama-a", "llama-b", "llama-c"])))
    cancel = threading.Event()
    with pytest.raises(merge_run.MergeCancelled):
        for step in merge_run.merge(text, "cancelled", cancel=cancel):
            if step.stage == "merging":
                cancel.set()
    assert _leftovers() == [] and "cancelled" not in [r.name for r in list_models()]

    # closing the generator (the tab's Cancel button) stops the merge too
    gen = merge_run.merge(text, "closed")
    for step in gen:
        if step.stage == "merging":
            gen.close()
            break
    assert _leftovers() == [] and "closed" not in [r.name for r in list_models()]

    # a failure while saving: no folder, no registration
    def broken(*_a, **_k):
        raise RuntimeError("disk went away")

    monkeypatch.setattr("mergekit.merge.run_merge", broken)
    with pytest.raises(merge_run.MergeError, match="disk went away"):
        _merge(text, "failed")
    assert _leftovers() == [] and not (settings.models_dir() / "merged" / "failed").exists()


def test_not_enough_disk_and_taken_name(registered, monkeypatch):
    text = "models:\n- model: llama-a\n  parameters: {weight: 1}\nmerge_method: linear\n"
    Usage = namedtuple("Usage", "total used free")
    with monkeypatch.context() as m:
        m.setattr(merge_run.shutil, "disk_usage", lambda _p: Usage(10, 10, 10))
        with pytest.raises(merge_run.MergeError, match="not enough disk space"):
            _merge(text, "big")
    with pytest.raises(merge_run.MergeError, match="already registered"):
        _merge(text, "llama-a")
