"""What a search's numbers are worth: the meta-evaluation accuracy of the fitness it optimised, dev and test
fitness of its best candidates, and a guard against gaming.

- `fitness_meta`: how often the fitness (the combined score with the run's weights, and its judge when it has
  one) prefers the better reply of the meta-evaluation pairs (`rp_eval.evaluate.meta`); computed once when a run
  starts and kept beside its checkpoint (`meta.json`).
- `gaming_flags`: a candidate whose persona-marker rate (`marker_rate`, markers per 100 characters) or
  repetition (`repeated_ngrams`) jumps above the first generation's median while the judge does not improve
  (or no judge is in the fitness to say) is flagged: a fitness that rewards marker words can be won by
  repeating them, and only a reader of the replies (or a judge) can tell that from real progress.
- `best_table`: the best candidates with dev and test fitness and their flags, for the CLI and the tab.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from functools import lru_cache
from pathlib import Path

import pandas as pd

from rp_eval.errors import RpEvalError, Said

# a jump: above the first generation's median by more than this (marker rate: per 100 characters, or half the
# median if that is more; repetition: share of repeated 4-grams)
MARKER_JUMP = 1.0
REPETITION_JUMP = 0.1
JUDGE_GAIN = 0.01  # the judge's mean grade on [0, 1] must rise by more than this to vouch for a jump


def fitness_meta(weights: str | None = None, judge: str | None = None, pairs: str | Path | None = None) -> dict:
    """The meta-evaluation accuracy of a fitness: overall with its 95% interval, and per category; a dict with
    `error` when the pairs can not be read (the search goes on without it)."""
    from rp_eval.evaluate.meta import meta_evaluate

    try:
        result = meta_evaluate(pairs, weights, judge, rounds=500)
    except RpEvalError as err:
        return {"error": str(err)}
    t = result.table
    overall = t[(t["what"] == "combined") & (t["category"] == "all")].iloc[0]
    by_category = {
        r.category: (None if r.n == 0 else round(float(r.accuracy), 4))
        for r in t[(t["what"] == "combined") & (t["category"] != "all")].itertuples()
    }
    out = {
        "accuracy": round(float(overall.accuracy), 4),
        "lo": round(float(overall.lo), 4),
        "hi": round(float(overall.hi), 4),
        "pairs": result.pairs,
        "weights": result.weights,
        "judge": judge or "",
        "by_category": by_category,
    }
    if result.judge:
        out["position_bias"] = result.judge["position_bias"]
    return out


@lru_cache(maxsize=4)
def default_fitness_meta() -> dict:
    """`fitness_meta` of the default fitness (default weights, no judge), computed once per process."""
    return fitness_meta()


def describe_meta(meta: dict) -> str:
    if not meta:
        return "fitness meta-evaluation: not measured"
    if "error" in meta:
        return f"fitness meta-evaluation: not available ({meta['error']})"
    cats = ", ".join(f"{c} {v:.0%}" for c, v in meta["by_category"].items() if v is not None)
    judge = f" + judge {meta['judge']}" if meta.get("judge") else ""
    return (
        f"the fitness (weights '{meta['weights']}'{judge}) prefers the better reply in {meta['accuracy']:.1%} of "
        f"{meta['pairs']} meta-evaluation pairs (95% {meta['lo']:.1%}–{meta['hi']:.1%}; {cats})"
    )


def save_meta(folder: Path, meta: dict) -> Path:
    """`meta.json` in a run's folder, written to a temporary file and moved into place."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, ensure_ascii=False)
    path = folder / "meta.json"
    os.replace(tmp, path)
    return path


def measure_meta(weights: str | None, judge: str | None) -> dict:
    """`fitness_meta` of a run's fitness (the default one is measured once per process)."""
    return default_fitness_meta() if not weights and not judge else fitness_meta(weights, judge)


def load_meta(folder: Path) -> dict:
    path = folder / "meta.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def gaming_flags(candidates) -> dict[int, Said]:
    """Candidate id -> why it is flagged (a message: English as text, the page's language through its key), for successful candidates whose marker rate or repetition jumped
    above the first generation's median while the judge did not improve."""
    ok = [c for c in candidates if c.status == "ok" and c.metrics]
    if not ok:
        return {}
    first = min(c.generation for c in ok)
    base = {
        k: _median([c.metrics[k] for c in ok if c.generation == first and k in c.metrics])
        for k in ("marker_rate", "repeated_ngrams", "judge")
    }
    flags = {}
    for c in ok:
        jumps = []
        rate, rep = c.metrics.get("marker_rate"), c.metrics.get("repeated_ngrams")
        r0, p0 = base["marker_rate"], base["repeated_ngrams"]
        if rate is not None and r0 is not None and rate - r0 > max(MARKER_JUMP, 0.5 * r0):
            jumps.append(Said("flag_marker", before=f"{r0:.2f}", after=f"{rate:.2f}"))
        if rep is not None and p0 is not None and rep - p0 > REPETITION_JUMP:
            jumps.append(Said("flag_repetition", before=f"{p0:.2f}", after=f"{rep:.2f}"))
        if not jumps:
            continue
        judge = c.metrics.get("judge")
        if judge is not None and base["judge"] is not None:
            if judge - base["judge"] > JUDGE_GAIN:
                continue
            why = Said("flag_judge", delta=f"{judge - base['judge']:+.3f}")
        else:
            why = Said("flag_no_judge")
        flags[c.id] = Said("flag_line", jumps=tuple(jumps), why=why)
    return flags


def best_table(candidates, top: int = 5) -> pd.DataFrame:
    """The best successful candidates by dev fitness: dev and test fitness, marker rate, repetition, judge, flag."""
    flags = gaming_flags(candidates)
    ok = sorted((c for c in candidates if c.status == "ok"), key=lambda c: -c.fitness)[:top]
    rows = [
        {
            "generation": c.generation,
            "index": c.index,
            "dev_fitness": round(c.fitness, 4),
            "test_fitness": None if c.test_fitness is None else round(c.test_fitness, 4),
            "marker_rate": round(c.metrics.get("marker_rate", float("nan")), 3),
            "repeated_ngrams": round(c.metrics.get("repeated_ngrams", float("nan")), 3),
            "judge": c.metrics.get("judge"),
            "flag": flags.get(c.id, ""),
        }
        for c in ok
    ]
    return pd.DataFrame(rows, columns=["generation", "index", "dev_fitness", "test_fitness", "marker_rate",
                                       "repeated_ngrams", "judge", "flag"])  # fmt: skip


def with_flags(frame: pd.DataFrame, candidates) -> pd.DataFrame:
    """A candidates table (one row per candidate, in `candidates` order) with a `flag` column added."""
    if frame.empty:
        return frame
    flags = gaming_flags(candidates)
    out = frame.copy()
    out["flag"] = [flags.get(c.id, "") for c in candidates]
    return out
