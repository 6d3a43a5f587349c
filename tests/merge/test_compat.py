"""The seed's findings, from config-only folders: what can merge, by which methods, and why not."""

from __future__ import annotations

import shutil

import pytest

from rp_eval.merge import compat
from rp_eval.merge.methods import is_parameter_space, method_names

PARAMETER_SPACE = [m for m in method_names() if is_parameter_space(m)]


def _pair(a, b) -> compat.PairCheck:
    (pair,) = compat.check_models([str(a), str(b)])
    return pair


@pytest.mark.parametrize(("a", "b"), [("elyza", "beta"), ("gamma", "shisa")])
def test_seed_pairs_accept_every_method(seed_configs, a, b):
    pair = _pair(seed_configs[a], seed_configs[b])
    assert set(PARAMETER_SPACE) | {"passthrough"} == set(pair.methods)
    assert {"linear", "slerp", "nuslerp", "ties", "dare_ties", "della", "model_stock"} <= set(pair.methods)
    assert pair.reasons == []


def test_llama3_and_gemma2_are_refused_with_the_fields(seed_configs):
    pair = _pair(seed_configs["llama3"], seed_configs["gemma2"])
    assert pair.methods == []
    text = " ".join(pair.reasons)
    assert "LlamaForCausalLM vs Gemma2ForCausalLM: different architectures" in text
    assert "parameter-space merging is impossible" in text
    for field in ("hidden_size 4096 vs 3584", "num_attention_heads 32 vs 16", "num_hidden_layers 32 vs 42"):
        assert field in text
    assert "vocab_size 128256 vs 256000" in " ".join(pair.notes)


def test_llama2_and_mistral_are_refused(seed_configs):
    pair = _pair(seed_configs["elyza"], seed_configs["gamma"])
    assert not any(is_parameter_space(m) for m in pair.methods)
    text = " ".join(pair.reasons)
    assert "LlamaForCausalLM vs MistralForCausalLM" in text
    assert "intermediate_size 11008 vs 14336" in text and "num_key_value_heads 32 vs 8" in text
    with pytest.raises(compat.CompatibilityError, match="can not be merged with ties"):
        compat.require_mergeable([str(seed_configs["elyza"]), str(seed_configs["gamma"])], "ties")


def test_the_check_reads_no_weights(tiny_models, tmp_path):
    """Weights replaced by garbage: the check still answers, so it never opened them."""
    folders = []
    for name in ("llama-a", "llama-b"):
        folder = shutil.copytree(tiny_models[name], tmp_path / name)
        (folder / "model.safetensors").write_bytes(b"not a tensor file")
        folders.append(str(folder))
    pair = _pair(*folders)
    assert "ties" in pair.methods and pair.notes == []  # same tokenizer, compared by its vocabulary


def test_tiny_llama_vs_mistral_matrix(registered):
    table = compat.matrix(["llama-a", "llama-b", "mistral"])
    assert list(table["model"]) == ["llama-a", "llama-b", "mistral"]
    assert table.loc[0, "llama-b"].startswith("all methods")
    assert "LlamaForCausalLM vs MistralForCausalLM" in table.loc[0, "mistral"]


def test_layer_count_difference_leaves_passthrough(tokenizer, tmp_path):
    from tests.conftest import save_tiny

    a = save_tiny(tmp_path / "two", tokenizer)
    b = save_tiny(tmp_path / "three", tokenizer, num_hidden_layers=3)
    pair = _pair(a, b)
    assert pair.methods == ["passthrough"]
    assert "num_hidden_layers 2 vs 3" in pair.reasons[0]


def test_the_merge_tab_says_why_in_japanese(registered, seed_configs, monkeypatch):
    """The matrix's verdicts, reasons and notes and the recipe's problems, on the Japanese page."""
    from rp_eval.ui import locale, merge_tab
    from tests.japanese import english_words, japanese

    allowed = {
        "llama-a",
        "llama-b",
        "mistral",
        "passthrough",
        "base",
        "union",
        "ties",
        "weight",
        "default",
    }  # + config values
    monkeypatch.setattr(locale, "language", lambda: "ja")
    table, status = merge_tab.check(["llama-a", "llama-b", "mistral"])
    assert list(table.columns[:1]) == ["モデル"] and japanese(status)
    cells = [str(v) for row in table.drop(columns="モデル").to_numpy() for v in row]
    assert "同じモデル" in cells and any(c.startswith("すべての手法で可") for c in cells)
    assert any("アーキテクチャが違う" in c for c in cells), cells
    assert [c for c in cells if not japanese(c) or english_words(c, allowed)] == []
    # llama3 × gemma2: every reason and note of the seed's refused pair
    (pair,) = compat.check_models([str(seed_configs["llama3"]), str(seed_configs["gemma2"])])
    text = pair.summary(say=locale.t, render=locale.error_text)
    assert text.count("。") >= 3 and english_words(text, allowed) == [], text
    recipe = "merge_method: ties\nbase_model: llama-a\nmodels:\n  - model: llama-a\n  - model: mistral\n"
    problems = merge_tab._problems_text(recipe + "    parameters: {weight: 0.5, density: 0.5}\n")
    assert "ではマージできません" in problems and english_words(problems.replace("⚠️", ""), allowed) == [], problems
    wrong = merge_tab.yaml_to_form("merge_method: [")[-1]
    assert "YAML の書き方に誤りがあります" in wrong
