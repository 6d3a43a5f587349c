"""Meta-evaluation: reading pairs files, accuracy with ties half and bootstrap intervals, the judge's columns,
the command, and the refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from rp_eval.chat.formats import get_format
from rp_eval.cli import main
from rp_eval.evaluate.judge import Judge
from rp_eval.evaluate.meta import (
    CATEGORIES,
    DEFAULT_PAIRS,
    MetaError,
    accuracy_table,
    meta_evaluate,
    preferences,
    read_pairs,
)
from rp_eval.evaluate.score import load_weights
from tests.evaluate.scripted_judge import ScriptedJudge

FIXTURE = Path(__file__).parent / "data" / "meta_pairs.jsonl"
# the categories the default score's heuristics can see; the others are left to a judge (see the README)
HEURISTIC = ("voice", "speaks_for_user", "cut_or_rambling", "leak_or_loop")


def test_accuracy_counts_ties_half_with_intervals_and_empty_categories():
    prefs = pd.DataFrame(
        {"id": list("abcde"), "category": ["A", "A", "A", "A", "B"], "x": [1, 1, 0, 0.5, 1], "y": [0.5] * 5}
    )
    table = accuracy_table(prefs, ["A", "B", "C"], rounds=400, seed=1)
    get = lambda what, cat: table[(table["what"] == what) & (table["category"] == cat)].iloc[0]  # noqa: E731
    assert get("x", "all").accuracy == pytest.approx(0.7) and get("x", "all").n == 5
    assert get("x", "A").accuracy == pytest.approx(0.625) and get("x", "A").ties == pytest.approx(0.25)
    assert get("x", "A").lo < 0.625 < get("x", "A").hi
    assert get("x", "B").lo == get("x", "B").hi == 1.0  # one pair: every resample is that pair
    assert get("y", "all").accuracy == 0.5 and get("y", "all").ties == 1.0
    empty = get("x", "C")
    assert empty.n == 0 and math.isnan(empty.accuracy)


def test_meta_on_a_small_file_every_category_and_the_json(capsys):
    result = meta_evaluate(FIXTURE, rounds=200)
    assert result.pairs == 8
    assert list(result.categories) == [*CATEGORIES, "my_extra"]  # the file's own category gets a column
    assert result.categories["contradiction"] == 0 and result.categories["leak_or_loop"] == 2
    assert result.accuracy("speaks_for_user", "speaks_for_user") == 1.0
    assert result.accuracy("special_token_leak", "leak_or_loop") == 0.75  # one leak, one tie
    assert result.accuracy("unfinished_ending", "cut_or_rambling") == 1.0
    assert result.accuracy("combined") == 1.0
    assert main(["eval", "meta", "--pairs", str(FIXTURE), "--rounds", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    combined = next(s for s in out["scores"] if s["what"] == "combined")
    assert combined["overall"]["accuracy"] == 1.0 and combined["overall"]["n"] == 8
    assert combined["by_category"]["contradiction"] is None and combined["by_category"]["voice"]["n"] == 2
    assert {s["what"] for s in out["scores"]} >= {"combined", "speaks_for_user", "overlong", "repeated_sentences"}
    assert main(["eval", "meta", "--pairs", str(FIXTURE), "--rounds", "50"]) == 0
    text = capsys.readouterr().out
    assert "8 pairs from" in text and "no pairs in: contradiction" in text


def test_the_judge_gets_its_own_rows_and_a_position_bias_figure(personas, tokenizer):
    def rule(text):
        if "【採点する返答】" in text:  # pointwise: the shorter reply gets a 5, the longer a 1
            reply = text.split("【採点する返答】")[1].split("点数：")[0]
            return [0, 0, 0, 0, 1.0] if len(reply) < 60 else [1.0, 0, 0, 0, 0]
        return [0, 0, 0, 1.0, 0]  # pairwise: always "B is a little better", whatever B is

    judge = Judge(ScriptedJudge(tokenizer, rule), tokenizer, get_format("llama2"), name="scripted")
    pairs = read_pairs(FIXTURE)
    prefs, info = preferences(pairs, load_weights(), personas, judge)
    assert info == {"model": "scripted", "position_bias": 0.5, "consistency": 0.0}
    assert (prefs["judge_pairwise"] == 0.5).all()  # averaged over both orders, the lean cancels out
    shorter = [0.5 if (len(p.better) < 60) == (len(p.worse) < 60) else float(len(p.better) < 60) for p in pairs]
    assert prefs["judge"].tolist() == pytest.approx(shorter)


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = json.loads(FIXTURE.read_text(encoding="utf-8").splitlines()[0])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "better"}), "line 2: better: Field required"),
        (json.dumps({**GOOD, "id": "z", "persona": "pirate"}), "line 2: unknown persona 'pirate'"),
        (json.dumps({**GOOD, "id": "z", "turns": [{"role": "assistant", "content": "やあ"}]}), "end with a user turn"),
        (json.dumps({**GOOD, "id": "z", "worse": GOOD["better"]}), "line 2: 'better' and 'worse' are the same"),
        (json.dumps(GOOD), "line 2: pair id 'v1' is already used on line 1"),
        (json.dumps({**GOOD, "id": "z", "category": "two words"}), "line 2: category"),
    ],
)
def test_a_malformed_line_is_named_by_file_and_line(tmp_path, line, message, capsys):
    path = _write(tmp_path, [json.dumps(GOOD, ensure_ascii=False), line])
    with pytest.raises(MetaError, match="bad.jsonl") as err:
        read_pairs(path)
    assert message in str(err.value)
    assert main(["eval", "meta", "--pairs", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_a_pairs_file_error_reads_in_japanese_on_the_japanese_page(tmp_path):
    from rp_eval.ui.locale import error_text, in_language

    path = _write(tmp_path, [json.dumps(GOOD, ensure_ascii=False), "{not json"])
    with pytest.raises(MetaError) as err:
        read_pairs(path)
    japanese = in_language("ja", error_text, err.value)
    assert "bad.jsonl の 2 行目: JSON として読めません" in japanese and "line" not in japanese
    assert in_language("en", error_text, err.value) == str(err.value)


def test_missing_or_empty_files_and_an_unknown_judge(tmp_path, workspace, capsys):
    with pytest.raises(MetaError, match="not found"):
        read_pairs(tmp_path / "nothing.jsonl")
    with pytest.raises(MetaError, match="holds no pairs"):
        read_pairs(_write(tmp_path, [""]))
    assert main(["eval", "meta", "--pairs", str(FIXTURE), "--judge", "nobody"]) == 2
    assert "judge model: no registered model named 'nobody'" in capsys.readouterr().err


@pytest.mark.skipif(not DEFAULT_PAIRS.exists(), reason="the shipped pairs file is not in this checkout")
def test_the_default_score_prefers_the_better_reply_on_the_shipped_pairs():
    result = meta_evaluate(rounds=200)
    assert result.pairs >= 240 and all(result.categories[c] > 0 for c in CATEGORIES)
    assert result.accuracy("combined") >= 0.85
    for category in HEURISTIC:
        assert result.accuracy("combined", category) >= 0.70, category
