"""A fast run of the honesty simulation (benchmarks/ratings_sim.py): it runs, and its figures are sane."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_simulation_runs_on_20_labs_and_prints_its_figures():
    out = subprocess.run(
        [sys.executable, "benchmarks/ratings_sim.py", "--labs", "20", "--rounds", "50", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert result["labs"] == 20 and set(result["votes_per_lab"]) == {"blind", "chat", "judge"}
    ranking, ppi = result["ranking"], result["ppi"]
    # 120 intervals each: loose bounds that a broken interval (or a broken truth) still fails
    for what in ("combined", "blind"):
        assert 0.75 <= ranking[what]["coverage"] <= 1.0 and ranking[what]["width_elo"] > 0
    for what in ("ppi", "ppi++", "human"):
        assert 0.75 <= ppi[what]["coverage"] <= 1.0 and ppi[what]["width"] > 0
    assert ranking["combined"]["spearman"] > ranking["blind"]["spearman"] - 0.1
    assert 0.3 < result["fitted_scale"]["chat"] < 0.8 and result["fitted_length"]["judge"] > 1.0
