"""`rp-eval serve --explain`: the KV cache plan of each registered model, printed from its config alone."""

from __future__ import annotations

from transformers import AutoConfig

from rp_eval.chat.blocks import blocks_for
from rp_eval.cli import main
from rp_eval.models import registry


def test_explain_prints_rows_and_blocks_for_each_model(workspace, tiny_llama, capsys):
    registry.add_model(str(tiny_llama), "tiny")
    assert main(["serve", "--explain", "--budget-gb", "0.05"]) == 0
    out = capsys.readouterr().out
    c = AutoConfig.from_pretrained(tiny_llama)
    per_token = 2 * c.num_hidden_layers * c.num_key_value_heads * (c.hidden_size // c.num_attention_heads) * 4
    blocks = 50_000_000 // (per_token * 16)
    assert "tiny (cpu, torch.float32): budget 0.1 GB; as rows: " in out
    assert "the static engine keeps its KV cache as blocks on cpu" in out
    assert f"in blocks: KV cache: {blocks:,} blocks of 16 tokens = {blocks * 16:,} tokens" in out
    assert f"{blocks // blocks_for(768):,} chats of 512 + 256 tokens at once" in out


def test_explain_with_no_models_and_a_bad_budget(workspace, capsys):
    assert main(["serve", "--explain"]) == 0
    assert "no models registered yet" in capsys.readouterr().out
    assert main(["serve", "--explain", "--budget-gb", "-1"]) == 2
    assert "--budget-gb must be a number of gigabytes above 0 (got -1.0)" in capsys.readouterr().err


def test_explain_names_a_bad_kv_layout(workspace, capsys, monkeypatch):
    monkeypatch.setenv("RP_EVAL_KV_LAYOUT", "pages")
    assert main(["serve", "--explain"]) == 2
    err = capsys.readouterr().err
    assert "setting 'kv_layout' in RP_EVAL_KV_LAYOUT" in err and "'auto', 'rows' or 'blocks'" in err
    monkeypatch.setenv("RP_EVAL_KV_LAYOUT", "rows")
    assert main(["serve", "--explain"]) == 0
    assert "keeps its KV cache as rows on cpu" in capsys.readouterr().out
