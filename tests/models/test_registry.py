from __future__ import annotations

import json
import shutil

import pytest

from rp_eval import store
from rp_eval.models import registry
from rp_eval.models.registry import RegistryError
from tests.conftest import save_tiny


def names() -> list[str]:
    return [r.name for r in registry.list_models()]


def test_add_a_local_model_reads_no_weights_and_persists(workspace, tiny_llama):
    row = registry.add_model(str(tiny_llama), "tiny")
    assert row.architecture == "LlamaForCausalLM" and row.model_type == "llama" and row.kind == "base"
    assert row.parameters > 0 and row.size_bytes > 0
    store._open.cache_clear()  # a new process: the registry comes back from the database file
    again = registry.get_model("tiny")
    assert again.source == str(tiny_llama.resolve()) and again.parameters == row.parameters
    assert (workspace / "rp_eval.sqlite").exists()


def test_default_name_is_the_folder_name(workspace, tiny_llama):
    assert registry.add_model(str(tiny_llama)).name == "tiny-llama"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: str(tmp / "missing"), "does not exist"),
        (lambda tmp: str(tmp), "no config.json"),
        (lambda tmp: str((tmp / "file.txt").write_text("x") and tmp / "file.txt"), "is a file"),
        (lambda tmp: "someone/some-model", "HF_HUB_OFFLINE"),
        (lambda tmp: "   ", "no model given"),
    ],
)
def test_bad_sources_get_one_clear_message_and_nothing_is_lost(workspace, tiny_llama, tmp_path, make, message):
    registry.add_model(str(tiny_llama), "keep-me")
    before = names()
    with pytest.raises(RegistryError, match=message):
        registry.add_model(make(tmp_path))
    assert names() == before


def test_folder_with_unreadable_config_or_no_tokenizer(workspace, tiny_llama, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(RegistryError, match="can not be read"):
        registry.add_model(str(broken))
    no_tok = tmp_path / "no-tokenizer"
    no_tok.mkdir()
    shutil.copy(tiny_llama / "config.json", no_tok / "config.json")
    with pytest.raises(RegistryError, match="tokenizer"):
        registry.add_model(str(no_tok))


def test_unknown_architecture_is_refused(workspace, tiny_llama, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(tiny_llama, odd)
    config = json.loads((odd / "config.json").read_text())
    config["architectures"] = ["LlamaForSequenceClassification"]
    (odd / "config.json").write_text(json.dumps(config))
    with pytest.raises(RegistryError, match="not a causal language model"):
        registry.add_model(str(odd))


def test_duplicate_names_and_unknown_formats_are_refused(workspace, tiny_llama):
    registry.add_model(str(tiny_llama), "tiny")
    with pytest.raises(RegistryError, match="already registered"):
        registry.add_model(str(tiny_llama), "tiny")
    with pytest.raises(RegistryError, match="unknown prompt format"):
        registry.add_model(str(tiny_llama), "other", prompt_format="vicuna")


def make_adapter(base_folder, out, base_name_or_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_folder)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    peft_model.save_pretrained(out)
    config = json.loads((out / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base_name_or_path
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out


def test_adapter_needs_its_base_registered(workspace, tiny_llama, tmp_path):
    adapter = make_adapter(tiny_llama, tmp_path / "lora", str(tiny_llama))
    with pytest.raises(RegistryError, match="base model .* is not registered"):
        registry.add_model(str(adapter), "lora")
    registry.add_model(str(tiny_llama), "tiny")
    row = registry.add_model(str(adapter), "lora")
    assert row.kind == "adapter" and row.parents == ["tiny"]
    with pytest.raises(RegistryError, match="remove those adapters first"):
        registry.remove_model("tiny")


def test_remove_keeps_files_unless_asked_and_only_deletes_workspace_files(workspace, tiny_llama, tokenizer):
    registry.add_model(str(tiny_llama), "outside")
    with pytest.raises(RegistryError, match="outside the workspace"):
        registry.remove_model("outside", delete_files=True)
    assert "outside" in names()
    registry.remove_model("outside")
    assert "outside" not in names() and (tiny_llama / "config.json").exists()

    made = save_tiny(workspace / "models" / "made-here", tokenizer)
    registry.add_model(str(made), "made", kind="merged")
    registry.remove_model("made", delete_files=True)
    assert not made.exists() and "made" not in names()
    with pytest.raises(RegistryError, match="no registered model named 'made'"):
        registry.remove_model("made")


def test_models_named_in_the_environment_are_registered(workspace, tiny_llama, tiny_mistral, tmp_path, monkeypatch):
    monkeypatch.setenv("RP_EVAL_MODELS", f"{tiny_llama}, {tmp_path / 'nope'}")
    problems = registry.register_configured()
    assert names() == ["tiny-llama"] and len(problems) == 1 and "does not exist" in problems[0]
    listing = tmp_path / "models.yaml"
    listing.write_text(
        f"models:\n  - {tiny_llama}\n  - source: {tiny_mistral}\n    name: mis\n    prompt_format: chatml\n"
    )
    monkeypatch.setenv("RP_EVAL_MODELS", str(listing))
    assert registry.register_configured() == []
    assert names() == ["tiny-llama", "mis"] and registry.get_model("mis").prompt_format == "chatml"


def test_registry_table(workspace, tiny_llama):
    registry.add_model(str(tiny_llama), "tiny")
    df = registry.table()
    assert list(df["name"]) == ["tiny"] and df.loc[0, "architecture"] == "LlamaForCausalLM"
    assert df.loc[0, "size"].endswith("B")
