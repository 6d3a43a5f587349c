"""Votes and scores as records: the rating axes, filters, frames for the statistics, and JSONL/CSV files.

As in FastChat, the data comes first: every judgement is a row in the store, and the statistics take a pandas
frame of those rows, so the same functions run on the live database or on an exported JSONL file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel

from rp_eval.errors import RpEvalError
from rp_eval.store import Store
from rp_eval.store import ratings as table


class RatingError(RpEvalError):
    """A rating that can not be taken or read, with a message meant for the rater."""


@dataclass(frozen=True)
class Axis:
    name: str
    title: str
    question: str


# The Likert axes, 1 (bad) to 5 (good). Adding an axis is adding one entry (and its UI strings).
AXES: list[Axis] = [
    Axis("naturalness", "Natural Japanese", "Is the Japanese natural, as a native speaker would write it?"),
    Axis("consistency", "In character", "Does the reply keep the character's voice, first person and manner?"),
    Axis("length_fit", "Turn length", "Is the length right for one conversational turn (not cut, not rambling)?"),
    Axis("overall", "Overall", "Overall, how good is this reply as role-play?"),
]
AXIS_NAMES = [a.name for a in AXES]

Winner = Literal["model_a", "model_b", "tie", "bothbad"]
WINNERS: tuple[str, ...] = ("model_a", "model_b", "tie", "bothbad")

VOTE_COLUMNS = ["id", "item_id", "rater", "created_at", "persona_id", "prompt", "model_a", "model_b", "winner"]
VOTE_COLUMNS += ["turns", "conversation_a", "conversation_b", "finish_a", "finish_b", "settings", "item_key"]
SCORE_COLUMNS = ["id", "item_id", "rater", "created_at", "persona_id", "prompt", "model", "reply", "finish_reason"]
SCORE_COLUMNS += [*AXIS_NAMES, "comment", "source_kind", "source_id", "conversation", "settings", "item_key"]


class RatingFilter(BaseModel, frozen=True):
    """Which judgements count: by persona, by rater, by date (since inclusive, until exclusive), minus raters."""

    persona: str = ""
    rater: str = ""
    exclude_raters: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


def check_scores(scores: dict[str, int]) -> dict[str, int]:
    """The scores, checked: every axis present, each a whole number from 1 to 5."""
    missing = [a for a in AXIS_NAMES if scores.get(a) in (None, "")]
    if missing:
        raise RatingError(key="err_rating_missing", axes=", ".join(missing))
    unknown = sorted(set(scores) - set(AXIS_NAMES))
    if unknown:
        raise RatingError(f"unknown rating axis: {', '.join(unknown)} (axes: {', '.join(AXIS_NAMES)})")
    out = {}
    for axis in AXIS_NAMES:
        value = scores[axis]
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or not 1 <= value <= 5:
            raise RatingError(key="err_rating_score", axis=axis, value=repr(value))
        out[axis] = int(value)
    return out


def item_key(*parts: object) -> str:
    """A content hash: the same model(s), conversation and reply(s) give the same key, whoever rates them."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:40]


def vote_frame(rows: list[table.VoteRow]) -> pd.DataFrame:
    return pd.DataFrame([{c: getattr(r, c) for c in VOTE_COLUMNS} for r in rows], columns=VOTE_COLUMNS)


def score_frame(rows: list[table.ScoreRow]) -> pd.DataFrame:
    records = [{**{c: getattr(r, c) for c in SCORE_COLUMNS if c not in AXIS_NAMES}, **r.scores} for r in rows]
    return pd.DataFrame(records, columns=SCORE_COLUMNS)


def load_votes(store: Store, where: RatingFilter = RatingFilter()) -> pd.DataFrame:
    return vote_frame(table.list_votes(store, **where.model_dump()))


def load_scores(store: Store, where: RatingFilter = RatingFilter()) -> pd.DataFrame:
    return score_frame(table.list_scores(store, **where.model_dump()))


def apply_filter(frame: pd.DataFrame, where: RatingFilter) -> pd.DataFrame:
    """The same filter on a frame read from a file (the store applies it in SQL)."""
    keep = pd.Series(True, index=frame.index)
    if where.persona:
        keep &= frame["persona_id"] == where.persona
    if where.rater:
        keep &= frame["rater"] == where.rater
    if where.exclude_raters:
        keep &= ~frame["rater"].isin(where.exclude_raters)
    if where.since or where.until:
        times = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
        if where.since:
            keep &= times >= _utc(where.since)
        if where.until:
            keep &= times < _utc(where.until)
    return frame[keep].reset_index(drop=True)


def _utc(moment: datetime) -> pd.Timestamp:
    """A date from the command line is read as UTC when it names no zone (the store keeps UTC)."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp


# -- files -------------------------------------------------------------------------------------------------


def _atomic_write(path: Path, write) -> Path:
    """Write to a temporary file in the same folder, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _jsonable(value):
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def neutral_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells that a spreadsheet would run as a formula (`=cmd|...`, `+`, `-`, `@`, a leading tab
    or carriage return) start with `'`, which shows the text as it is (OWASP's advice for CSV injection)."""
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):  # object or string columns (pandas 3 "str")
            out[column] = out[column].map(
                lambda v: f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v
            )
    return out


def write_frame(frame: pd.DataFrame, path: Path, fmt: Literal["csv", "jsonl"] = "jsonl") -> Path:
    """A frame as CSV (nested values as JSON text, formula cells neutralised: `neutral_cells`) or JSONL (one record a line), written atomically."""
    if fmt == "jsonl":

        def write(fh):
            for record in frame.to_dict(orient="records"):
                fh.write(json.dumps({k: _jsonable(v) for k, v in record.items()}, ensure_ascii=False) + "\n")

    elif fmt == "csv":
        flat = frame.copy()
        for column in flat.columns:
            if flat[column].map(lambda v: isinstance(v, list | dict)).any():
                flat[column] = flat[column].map(lambda v: json.dumps(v, ensure_ascii=False))

        flat = neutral_cells(flat)

        def write(fh):
            flat.to_csv(fh, index=False)

    else:
        raise RatingError(f"unknown export format '{fmt}' (csv or jsonl)")
    return _atomic_write(path, write)


def read_jsonl(path: Path) -> pd.DataFrame:
    """Records exported with `write_frame(..., "jsonl")` (votes or scores), for the statistics."""
    path = Path(path)
    if not path.exists():
        raise RatingError(f"file '{path}' does not exist")
    records = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RatingError(f"file '{path}' is not UTF-8 text") from None
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise RatingError(f"{path}, line {n}: not JSON ({err.msg})") from err
    return pd.DataFrame(records)
