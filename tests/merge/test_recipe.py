"""Recipes: mergekit's examples and our presets load, validate and round-trip through the form; bad input is
named with its field before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from rp_eval.merge import form, recipe
from rp_eval.merge.methods import method_names, methods
from tests.conftest import save_tiny
from tests.merge.conftest import DATA

EXAMPLES = sorted((DATA / "mergekit-examples").glob("*.yml"))
PRESETS = sorted((Path(__file__).resolve().parents[2] / "merges").glob("*.yaml"))


@pytest.fixture(scope="module")
def deep_models(tmp_path_factory, tokenizer) -> list[Path]:
    """Four tiny Llamas with 40 layers, so the examples' layer ranges (13B models) fit."""
    root = tmp_path_factory.mktemp("deep")
    return [save_tiny(root / f"deep-{i}", tokenizer, seed=i, num_hidden_layers=40) for i in range(4)]


def _mapper(deep_models):
    names: dict[str, str] = {}
    return lambda n: names.setdefault(n, str(deep_models[len(names)]))


def _canonical(data: dict) -> dict:
    return recipe.parse(data).model_dump(mode="json", exclude_defaults=True)


def test_the_methods_offered_include_the_issue_list():
    wanted = "linear slerp nuslerp task_arithmetic ties dare_ties dare_linear della model_stock breadcrumbs passthrough"
    assert set(wanted.split()) <= set(method_names())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_mergekit_examples_round_trip_through_the_form(path, deep_models):
    assert len(EXAMPLES) >= 6
    data = recipe.map_models(recipe.load_yaml(path.read_text()), _mapper(deep_models))
    assert recipe.problems(data) == []  # structure, method, parameters, layer ranges and shapes
    saved = recipe.to_yaml(form.from_form(form.to_form(data)))
    assert _canonical(recipe.load_yaml(saved)) == _canonical(data)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_presets_are_valid_for_the_seed_shapes(path, seed_configs):
    # the common ancestors have the shapes of the instruct models they were tuned into
    folders = {
        "elyza/ELYZA-japanese-Llama-2-7b-instruct": seed_configs["elyza"],
        "stabilityai/japanese-stablelm-instruct-beta-7b": seed_configs["beta"],
        "meta-llama/Llama-2-7b-hf": seed_configs["elyza"],
        "stabilityai/japanese-stablelm-instruct-gamma-7b": seed_configs["gamma"],
        "augmxnt/shisa-gamma-7b-v1": seed_configs["shisa"],
        "stabilityai/japanese-stablelm-base-gamma-7b": seed_configs["gamma"],
    }
    text = path.read_text()
    assert recipe.problems(text, resolve=lambda n: str(folders[n])) == []
    data = recipe.load_yaml(text)
    assert _canonical(form.from_form(form.to_form(data))) == _canonical(data)


def test_presets_cover_both_pairs_and_three_methods():
    methods = {(p.stem.split("-ja-")[0], recipe.parse(p.read_text()).merge_method) for p in PRESETS}
    assert methods == {(f, m) for f in ("llama2", "mistral") for m in ("slerp", "ties", "dare_ties")}


def _one(text: str, **kw) -> recipe.Problem:
    found = recipe.problems(text, **kw)
    assert found, "expected a problem"
    return found[0]


def test_malformed_yaml_names_line_and_column():
    p = _one("models:\n  - model: a\n merge_method: [linear\n")
    assert p.field == "yaml" and "line 3, column" in p.message


def test_unknown_method(registered):
    p = _one("models:\n- model: llama-a\nmerge_method: frankenstein\n")
    assert p.field == "merge_method" and "unknown method 'frankenstein'" in p.message and "ties" in p.message


def test_weight_that_is_not_a_number(registered):
    p = _one("models:\n- model: llama-a\n  parameters: {weight: lots}\n- model: llama-b\n"
             "  parameters: {weight: 1}\nmerge_method: linear\n")  # fmt: skip
    assert p.field == "models.0.parameters.weight" and "'lots' is not a valid weight" in p.message


def test_missing_base_model(registered):
    p = _one("models:\n- model: llama-a\n  parameters: {weight: 1}\nmerge_method: ties\n")
    assert p.field == "base_model" and "ties needs a base model" in p.message


def test_missing_t_for_slerp(registered):
    p = _one("models:\n- model: llama-a\n- model: llama-b\nmerge_method: slerp\nbase_model: llama-a\n")
    assert p.field == "parameters.t"


def test_layer_range_beyond_the_model(registered):
    text = "slices:\n- sources:\n  - model: llama-a\n    layer_range: [0, 9]\nmerge_method: passthrough\n"
    p = _one(text)
    assert p.field == "slices.0.sources.0.layer_range" and "beyond 'llama-a' (2 layers)" in p.message


def test_incompatible_models(registered):
    text = (
        "models:\n- model: llama-a\n- model: mistral\nmerge_method: slerp\nbase_model: llama-a\nparameters: {t: 0.5}\n"
    )
    p = _one(text)
    assert p.field == "models" and "LlamaForCausalLM vs MistralForCausalLM" in p.message
    with pytest.raises(recipe.RecipeError, match="can not be merged with slerp"):
        recipe.validate(text)


def test_form_rejects_a_bad_cell_and_layer_range():
    f = form.RecipeForm(merge_method="linear", inputs=(form.InputRow(model="a", weight="[0, 1"),))
    with pytest.raises(recipe.RecipeError) as err:
        form.from_form(f)
    assert err.value.field == "inputs.0.weight"
    f = form.RecipeForm(merge_method="passthrough", inputs=(form.InputRow(model="a", layer_range="3"),))
    with pytest.raises(recipe.RecipeError, match=r"\[first, end\]"):
        form.from_form(f)


def count(method: str) -> int:
    """How many models a method's default recipe gets: as many as it takes, three at most."""
    info = methods()[method]
    return 2 if method == "nuslerp" else min(info.max_inputs or 3, 3)


def test_defaults_give_a_runnable_recipe_for_every_method(registered):
    models = ["llama-a", "llama-b", "llama-c"]
    for method in method_names():
        f = form.defaults(method, models[: count(method)])
        found = recipe.problems(form.from_form(f))
        assert found == [], (method, found)


def test_save_load_duplicate(registered):
    text = recipe.to_yaml(form.from_form(form.defaults("slerp", ["llama-a", "llama-b"])))
    path = recipe.save_recipe("my mix", text)
    assert path.name == "my-mix.yaml" and recipe.list_recipes() == ["my-mix"]
    assert recipe.load_recipe("my-mix") == text
    recipe.duplicate_recipe("my-mix", "my-mix-2")
    with pytest.raises(recipe.RecipeError, match="exists already"):
        recipe.duplicate_recipe("my-mix", "my-mix-2")
    with pytest.raises(recipe.RecipeError, match="no recipe named"):
        recipe.load_recipe("nothing")
    assert not list(path.parent.glob("*.tmp"))
