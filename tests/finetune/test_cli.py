from __future__ import annotations

import json

from rp_eval.cli import main
from rp_eval.models import registry


def test_preview_shows_the_end_marker_check_and_trained_spans(tiny_base, capsys):
    assert main(["finetune", "preview", "--base", tiny_base, "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "end marker '</s>' (id 2) tokenises as '</s>' → one real token: OK" in out
    assert "⟦" in out and "</s>⟧" in out and "36 conversations kept" in out


def test_run_prints_the_result_and_registers_the_adapter(tiny_base, capsys):
    code = main(["finetune", "run", "--base", tiny_base, "--max-steps", "3", "--batch-size", "4", "--grad-accum", "1",
                 "--stop-check-prompts", "2", "--adapter-name", "tiny-rp", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["status"] == "done" and result["adapter"] == "tiny-rp"
    assert result["metrics"]["steps"] == 3 and "stop_check" in result["metrics"]
    assert "adapter registered as 'tiny-rp'" in captured.err
    assert registry.get_model("tiny-rp").kind == "adapter"
    assert main(["finetune", "runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["adapter"] == "tiny-rp"


def test_bad_input_exits_2_with_a_message(tiny_base, tmp_path, capsys):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "こんにちは"}]}\n')
    assert main(["finetune", "run", "--base", tiny_base, "--data", str(bad)]) == 2
    assert "the conversation has no assistant turn" in capsys.readouterr().err
    assert main(["finetune", "run", "--base", tiny_base, "--lora-r", "0"]) == 2
    assert "lora_r" in capsys.readouterr().err
