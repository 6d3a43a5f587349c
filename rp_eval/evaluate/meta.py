"""Meta-evaluation: how often does a score prefer the better of two replies?

A pairs file (`prompts/eval/meta/pairs.jsonl` by default; any file in the same format) holds one JSON object a
line: `id`, `persona`, `category`, `turns` (the conversation so far, ending on a user turn), `better`, `worse`,
where `worse` is worse by construction in the way its category names. Every metric with a direction, the
combined score (with the weights given) and, when a judge model is given, the judge (each reply alone, and the
two side by side in both orders) are asked which reply is better. A score's accuracy is the share of pairs
where it prefers `better`, a tie counting half, overall and per category, with 95% percentile bootstrap
intervals over the pairs. Nothing is stored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rp_eval.chat.formats import Message
from rp_eval.chat.personas import Persona, load_personas
from rp_eval.errors import RpEvalError, Said
from rp_eval.evaluate.metrics import METRICS, Reply, measure
from rp_eval.evaluate.score import Weights, combined, directed, load_weights
from rp_eval.evaluate.task import Turn

META_DIR = Path(__file__).resolve().parents[2] / "prompts" / "eval" / "meta"
DEFAULT_PAIRS = META_DIR / "pairs.jsonl"
# the categories the shipped set is built from; a file may hold others (they get their own column)
CATEGORIES = ("voice", "speaks_for_user", "cut_or_rambling", "leak_or_loop", "bland_off_topic", "contradiction")
COLUMNS = ["what", "kind", "category", "n", "accuracy", "lo", "hi", "ties"]


class MetaError(RpEvalError):
    """A pairs file that can not be used, naming the file and line."""


class Pair(BaseModel, frozen=True):
    model_config = ConfigDict(extra="ignore")  # a note or source field beside the required ones is fine

    id: str = Field(min_length=1)
    persona: str = Field(min_length=1)
    category: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    turns: list[Turn] = Field(min_length=1)
    better: str = Field(min_length=1)
    worse: str = Field(min_length=1)

    @field_validator("turns")
    @classmethod
    def _ends_on_user(cls, turns: list[Turn]) -> list[Turn]:
        if turns[-1].role != "user":
            raise ValueError("turns must end with a user turn (the replies answer it)")
        if any(a.role == b.role for a, b in zip(turns, turns[1:], strict=False)):
            raise ValueError("turns must alternate user / assistant")
        return turns


def read_pairs(path: str | Path | None = None, personas: dict[str, Persona] | None = None) -> list[Pair]:
    """Every pair of the file; MetaError naming the file and line for a line that can not be used."""
    path = Path(path) if path else DEFAULT_PAIRS
    if not path.is_file():
        raise MetaError(key="err_meta_missing", path=str(path))
    personas = load_personas() if personas is None else personas
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MetaError(key="err_meta_not_utf8", path=str(path)) from None
    pairs: list[Pair] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = Said("where_line", file=str(path), line=number)
        try:
            pair = Pair.model_validate(json.loads(line))
        except json.JSONDecodeError as err:
            raise MetaError(key="err_meta_json", where=where, detail=err.msg, column=err.colno) from None
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'pair'}: {e['msg']}" for e in err.errors())
            raise MetaError(key="err_meta_fields", where=where, problems=problems) from None
        if pair.persona not in personas:
            raise MetaError(
                key="err_meta_persona", where=where, persona=pair.persona, known=", ".join(sorted(personas))
            )
        if pair.better.strip() == pair.worse.strip():
            raise MetaError(key="err_meta_same", where=where)
        if pair.id in seen:
            raise MetaError(key="err_meta_duplicate", where=where, id=pair.id, line=seen[pair.id])
        seen[pair.id] = number
        pairs.append(pair)
    if not pairs:
        raise MetaError(key="err_meta_empty", path=str(path))
    return pairs


def to_reply(pair: Pair, text: str, personas: dict[str, Persona], user: str = "あなた") -> Reply:
    """One side of a pair as the metrics see a reply (it ended by itself: a pair holds text only)."""
    persona = personas[pair.persona]
    filled = [persona.fill(t.content, user) for t in pair.turns]
    return Reply(
        text=text,
        last_user=filled[-1],
        system=persona.system_text(user),
        character=persona.name,
        style=persona.style,
        others=tuple(p.style for pid, p in personas.items() if pid != pair.persona),
        history=(
            persona.greeting(user),
            *(c for c, t in zip(filled, pair.turns, strict=True) if t.role == "assistant"),
        ),
        user=user,
    )


def _prefer(better: float, worse: float) -> float:
    return 0.5 if math.isclose(better, worse, abs_tol=1e-9) else float(better > worse)


@dataclass
class MetaResult:
    table: pd.DataFrame  # COLUMNS: one row per (score, category), category "all" first
    pairs: int
    categories: dict[str, int]  # pairs per category (0 for a known category the file lacks)
    source: str
    weights: str
    judge: dict = field(default_factory=dict)  # model, position_bias, consistency (when a judge was asked)

    def accuracy(self, what: str = "combined", category: str = "all") -> float:
        row = self.table[(self.table["what"] == what) & (self.table["category"] == category)]
        return float(row["accuracy"].iloc[0]) if len(row) else math.nan

    def wide(self) -> pd.DataFrame:
        """One row per score: overall accuracy with its interval, then each category's accuracy."""
        t = self.table
        overall = t[t["category"] == "all"].set_index("what")
        out = pd.DataFrame({"kind": overall["kind"], "all": overall["accuracy"], "lo": overall["lo"],
                            "hi": overall["hi"], "ties": overall["ties"]})  # fmt: skip
        for cat in self.categories:
            out[cat] = t[t["category"] == cat].set_index("what")["accuracy"]
        return out.reset_index()

    def to_json(self) -> dict:
        by_cat = {
            what: {
                r.category: (None if r.n == 0 else {"accuracy": r.accuracy, "lo": r.lo, "hi": r.hi, "n": r.n})
                for r in rows.itertuples()
            }
            for what, rows in self.table.groupby("what", sort=False)
        }
        return {
            "pairs": self.pairs,
            "source": self.source,
            "weights": self.weights,
            "categories": self.categories,
            "judge": self.judge,
            "scores": [
                {
                    "what": what,
                    "kind": rows["kind"].iloc[0],
                    "overall": by_cat[what].pop("all"),
                    "by_category": by_cat[what],
                }
                for what, rows in self.table.groupby("what", sort=False)
            ],
        }


def preferences(
    pairs: list[Pair], weights: Weights, personas: dict[str, Persona] | None = None, judge=None
) -> tuple[pd.DataFrame, dict]:
    """Per pair and score: 1 if it prefers `better`, 0.5 for a tie, 0 if it prefers `worse`; and the judge's
    position figures (empty without a judge)."""
    personas = load_personas() if personas is None else personas
    good = [measure(to_reply(p, p.better, personas)) for p in pairs]  # raw values; `combined` puts them on [0, 1]
    bad = [measure(to_reply(p, p.worse, personas)) for p in pairs]
    info: dict = {}
    if judge is not None:
        from rp_eval.evaluate.judge import Case

        cases = [
            Case(
                personas[p.persona],
                [Message(role=t.role, content=personas[p.persona].fill(t.content)) for t in p.turns],
                p.better,
            )
            for p in pairs
        ]
        worse = [Case(c.persona, c.turns, p.worse) for c, p in zip(cases, pairs, strict=True)]
        scores = judge.pointwise(cases + worse)  # both sides in the same batches
        g_scores, b_scores = scores[: len(cases)], scores[len(cases) :]
        pairwise = judge.pairwise(cases, [p.worse for p in pairs])  # `better` shown first, then swapped
        for g, b, gs, bs, ps in zip(good, bad, g_scores, b_scores, pairwise.prefer_second, strict=True):
            g["judge"], b["judge"] = gs, bs
            g["judge_pairwise"], b["judge_pairwise"] = 1 - ps, ps
        info = {"model": judge.name, "position_bias": round(pairwise.position_bias, 4),
                "consistency": round(pairwise.consistency, 4)}  # fmt: skip
    names = [m.name for m in METRICS if m.good is not None] + (["judge", "judge_pairwise"] if judge else [])
    rows = []
    for p, g, b in zip(pairs, good, bad, strict=True):
        row = {"id": p.id, "category": p.category}
        row["combined"] = _prefer(combined(g, weights), combined(b, weights))
        dg, db = {**g, **directed(g)}, {**b, **directed(b)}  # judge_pairwise is already a preference
        row.update({n: _prefer(dg[n], db[n]) for n in names})
        rows.append(row)
    return pd.DataFrame(rows), info


def _kind(what: str) -> str:
    return "combined" if what == "combined" else "judge" if what.startswith("judge") else "metric"


def accuracy_table(prefs: pd.DataFrame, categories: list[str], rounds: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Accuracy (ties half) of every score column, overall and per category, with percentile bootstrap intervals
    (pairs resampled with replacement, within the category for a category's interval)."""
    scores = [c for c in prefs.columns if c not in ("id", "category")]
    rng = np.random.default_rng(seed)
    rows = []
    for cat in ["all", *categories]:
        part = prefs if cat == "all" else prefs[prefs["category"] == cat]
        values = part[scores].to_numpy(float)
        n = len(values)
        if n:
            draws = values[rng.integers(0, n, (rounds, n))].mean(axis=1)
            lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
        for k, what in enumerate(scores):
            if not n:
                rows.append([what, _kind(what), cat, 0, math.nan, math.nan, math.nan, math.nan])
                continue
            col = values[:, k]
            rows.append([what, _kind(what), cat, n, round(float(col.mean()), 4), round(float(lo[k]), 4),
                         round(float(hi[k]), 4), round(float((col == 0.5).mean()), 4)])  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def meta_evaluate(
    pairs_file: str | Path | None = None,
    weights: str | Path | Weights | None = None,
    judge: str | None = None,
    rounds: int = 1000,
    seed: int = 0,
) -> MetaResult:
    """The meta-evaluation of the metrics, the combined score and (optionally) a judge model on a pairs file."""
    personas = load_personas()
    pairs = read_pairs(pairs_file, personas)
    w = weights if isinstance(weights, Weights) else load_weights(weights)
    loaded = None
    if judge:
        from rp_eval.evaluate.judge import load_judge

        loaded = load_judge(judge)
    prefs, info = preferences(pairs, w, personas, loaded)
    seen = list(dict.fromkeys(p.category for p in pairs))
    categories = [*CATEGORIES, *(c for c in seen if c not in CATEGORIES)]
    counts = {c: sum(p.category == c for p in pairs) for c in categories}
    return MetaResult(
        accuracy_table(prefs, categories, rounds, seed),
        len(pairs),
        counts,
        str(Path(pairs_file) if pairs_file else DEFAULT_PAIRS),
        w.name,
        info,
    )
