"""Every source a merge recipe names, however nested, is found and confined (the library side of the Merge tab's
check; tests/reliability/test_lab_safety.py tries the same forms over HTTP)."""

from __future__ import annotations

import pytest

from rp_eval.merge import recipe
from rp_eval.paths import PathNotAllowed

OUT = "/srv/elsewhere/model"
FORMS = {
    "nested model.path": {
        "models": [{"model": {"model": {"path": OUT}}, "parameters": {"weight": 0.5}}, {"model": "org/a"}],
        "merge_method": "linear",
    },
    "tokenizer.source": {
        "models": [{"model": "org/a", "parameters": {"weight": 1.0}}],
        "merge_method": "linear",
        "tokenizer": {"source": {"model": {"path": OUT}}},
    },
    "token embedding": {
        "models": [{"model": "org/a", "parameters": {"weight": 1.0}}],
        "merge_method": "linear",
        "tokenizer": {
            "source": "union",
            "tokens": {"<x>": {"source": {"kind": "model_token", "model": OUT, "token": "a"}}},
        },
    },
    "tokenizer_source": {"models": [{"model": "org/a"}], "merge_method": "linear", "tokenizer_source": OUT},
    "base_model": {
        "models": [{"model": "org/a", "parameters": {"weight": 0.5, "density": 0.5}}],
        "merge_method": "ties",
        "base_model": {"model": {"path": OUT}},
    },
    "slice source": {
        "slices": [{"sources": [{"model": OUT, "layer_range": [0, 2]}, {"model": "org/a", "layer_range": [0, 2]}]}],
        "merge_method": "slerp",
        "base_model": "org/a",
        "parameters": {"t": 0.5},
    },
    "lora": {"models": [{"model": f"org/a+{OUT}", "parameters": {"weight": 1.0}}], "merge_method": "linear"},
}


@pytest.mark.parametrize("form", FORMS)
def test_every_nested_source_is_found_and_an_outside_one_refused(form, workspace):
    found = recipe.sources(recipe.parse(FORMS[form]))
    assert OUT in found and "org/a" in found, found
    with pytest.raises(PathNotAllowed, match="outside the folders"):
        recipe.confine(FORMS[form])


def test_hub_ids_and_folders_inside_pass(workspace):
    inside = str(workspace / "models" / "mine")
    data = {"models": [{"model": "org/a"}, {"model": {"model": {"path": inside}}}], "merge_method": "linear"}
    assert recipe.confine(data) == ["org/a", inside]
