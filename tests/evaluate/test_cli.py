from __future__ import annotations

import json

from rp_eval.cli import main


def test_eval_run_prints_the_table_and_writes_csv_and_report(tiny_registered, tmp_path, capsys):
    csv, page = tmp_path / "out.csv", tmp_path / "out.html"
    code = main(["eval", "run", "--models", f"{tiny_registered},ghost", "--limit", "4", "--batch-size", "4",
                 "--max-new-tokens", "8", "--csv", str(csv), "--report", str(page), "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1 and "ghost failed: no registered model named 'ghost'" in err
    summary = json.loads(out)
    (row,) = summary["models"]
    assert row["model"] == tiny_registered and row["replies"] == 4 and 0 <= row["combined"] <= 1
    assert len(csv.read_text(encoding="utf-8").splitlines()) == 5
    assert "How replies ended" in page.read_text(encoding="utf-8")


def test_eval_items_and_person_errors(workspace, capsys):
    assert main(["eval", "items", "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] >= 70
    assert main(["eval", "run"]) == 2
    assert "needs --models" in capsys.readouterr().err
    assert main(["eval", "calibrate"]) == 2
    assert "at least 10 Likert-scored replies" in capsys.readouterr().err
