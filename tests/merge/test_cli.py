"""`rp-eval merge ...` calls the same functions as the tab."""

from __future__ import annotations

import json

from rp_eval.cli import main


def test_cli_check_validate_run(registered, tmp_path, capsys):
    assert main(["merge", "check", "llama-a", "mistral"]) == 0
    assert "LlamaForCausalLM vs MistralForCausalLM" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n- model: llama-a\n  parameters: {weight: 1}\nmerge_method: ties\n")
    assert main(["merge", "validate", str(bad)]) == 2
    assert "base_model: ties needs a base model" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text(
        "models:\n- model: llama-a\n- model: llama-b\nmerge_method: slerp\nbase_model: llama-a\nparameters: {t: 0.3}\n"
    )
    assert main(["merge", "run", str(good), "--name", "cli-mix"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"] == "cli-mix"
    assert main(["merge", "run", str(good), "--name", "cli-mix"]) == 2
    assert "already registered" in capsys.readouterr().err
    assert main(["merge", "methods"]) == 0
    assert "dare_ties" in capsys.readouterr().out
