"""Library errors a page shows are raised with message keys: the fine-tune data checks, the genome's own checks
(raised inside pydantic's validation and still keyed) and the search's refusals read in Japanese on the Japanese
page and in English elsewhere."""

from __future__ import annotations

import json

import pytest

from rp_eval.errors import RpEvalError
from rp_eval.evolve.genome import parse_genome
from rp_eval.finetune import data
from rp_eval.ui.locale import error_text, in_language
from tests.japanese import japanese


def _said(fn) -> tuple[str, str]:
    with pytest.raises(RpEvalError) as caught:
        fn()
    assert caught.value.key, str(caught.value)
    return in_language("ja", lambda: error_text(caught.value)), str(caught.value)


def test_training_data_errors_name_file_and_line_in_japanese(tmp_path):
    bad = tmp_path / "chat.jsonl"
    good = {"messages": [{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "やあ"}]}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({"messages": [{"role": "narrator", "content": "x"}]}) + "\n")
    ja, en = _said(lambda: data.load_conversations(str(bad)))
    assert ja.startswith("'chat.jsonl' の 2 行目: 役割 'narrator' は使えません") and japanese(ja), ja
    assert en.startswith("'chat.jsonl' line 2: unknown role 'narrator'"), en


def test_a_genomes_own_check_is_keyed_through_pydantic():
    ja, en = _said(lambda: parse_genome("name: g\nmethod: linear\nmodels: [a]\n"))
    assert "linear には少なくとも 2 つのモデルが必要です" in ja, ja
    assert "linear needs at least two models" in en and "Value error" not in en, en
    ja, _ = _said(lambda: parse_genome("name: .x\nmethod: linear\nmodels: [a, b]\n"))
    assert "名前 '.x' には英数字と" in ja, ja
