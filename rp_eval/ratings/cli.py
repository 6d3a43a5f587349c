"""`rp-eval ratings leaderboard|export`: the Leaderboard tab's numbers and files from the command line.

Both read the store, or (leaderboard) JSONL files exported from it, so a leaderboard can be recomputed from
records on another machine, as FastChat's elo_analysis.py does with its vote logs.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

import pandas as pd

from rp_eval.ratings import leaderboard
from rp_eval.ratings.records import (
    SCORE_COLUMNS,
    VOTE_COLUMNS,
    RatingError,
    RatingFilter,
    apply_filter,
    load_scores,
    load_votes,
    read_jsonl,
    write_frame,
)


def _date(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as err:
        raise RatingError(f"'{text}' is not a date (write it as 2026-05-01 or 2026-05-01T13:00)") from err


def _filter(args: argparse.Namespace) -> RatingFilter:
    return RatingFilter(
        persona=args.persona,
        rater=args.rater,
        exclude_raters=tuple(args.exclude_rater),
        since=_date(args.since),
        until=_date(args.until),
    )


def _records(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    if args.rounds < 100:
        raise RatingError(f"--rounds must be at least 100 for a 95% interval (got {args.rounds})")
    where = _filter(args)
    if getattr(args, "votes", None) or getattr(args, "scores", None):
        votes = read_jsonl(args.votes) if args.votes else pd.DataFrame(columns=VOTE_COLUMNS)
        scores = read_jsonl(args.scores) if args.scores else pd.DataFrame(columns=SCORE_COLUMNS)
        return apply_filter(votes, where), apply_filter(scores, where)
    from rp_eval.store import get_store

    store = get_store()
    return load_votes(store, where), load_scores(store, where)


def _leaderboard(args: argparse.Namespace) -> int:
    votes, scores = _records(args)
    board = leaderboard.compute(votes, scores, rounds=args.rounds, seed=args.seed)
    if args.json:
        out = {
            "arena": board.arena.to_dict(orient="records"),
            "likert": board.likert.to_dict(orient="records"),
            "win_rates": json.loads(board.win_rates.to_json()),
            "vote_counts": json.loads(board.counts.to_json()),
            "agreement": board.agreement_frame().to_dict(orient="records"),
            "votes": len(votes),
            "scores": len(scores),
            "rounds": args.rounds,
        }
        print(json.dumps(out, ensure_ascii=False, default=str))
        return 0
    print(f"Pairwise (Bradley-Terry, Elo scale, 95% bootstrap interval over {args.rounds} rounds; {len(votes)} votes)")
    print(leaderboard.text_table(board.arena))
    print(f"\nLikert means with 95% intervals ({len(scores)} scored replies)")
    print(leaderboard.text_table(board.likert))
    print("\nAgreement between raters (Krippendorff's alpha, items judged by two raters or more)")
    print(leaderboard.text_table(board.agreement_frame()))
    return 0


def _export(args: argparse.Namespace) -> int:
    votes, scores = _records(args)
    out = Path(args.out)
    written = [write_frame(votes, out / f"votes.{args.format}", args.format)]
    written.append(write_frame(scores, out / f"scores.{args.format}", args.format))
    if not args.raw_only:
        board = leaderboard.compute(votes, scores, rounds=args.rounds, seed=args.seed)
        written += leaderboard.export(board, out, args.format)
    for path in written:
        print(path)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--persona", default="", help="only ratings of this persona id")
    p.add_argument("--rater", default="", help="only ratings by this rater")
    p.add_argument("--exclude-rater", action="append", default=[], help="leave this rater out (repeatable)")
    p.add_argument("--since", default="", help="from this date or time (inclusive), e.g. 2026-05-01")
    p.add_argument("--until", default="", help="before this date or time")
    p.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds (at least 100 for the intervals)")
    p.add_argument("--seed", type=int, default=0)


def add_parser(sub) -> None:
    r = sub.add_parser("ratings", help="human ratings: leaderboard and export")
    actions = r.add_subparsers(dest="action", required=True)
    lb = actions.add_parser("leaderboard", help="print the leaderboard (the same table as the Leaderboard tab)")
    _common(lb)
    lb.add_argument("--votes", default="", help="read votes from this JSONL export instead of the store")
    lb.add_argument("--scores", default="", help="read scores from this JSONL export instead of the store")
    lb.add_argument("--json", action="store_true")
    lb.set_defaults(func=_leaderboard)
    ex = actions.add_parser("export", help="write raw votes and scores, and the aggregates, as CSV or JSONL")
    _common(ex)
    ex.add_argument("--out", required=True, help="folder to write into")
    ex.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    ex.add_argument("--raw-only", action="store_true", help="only votes and scores, no aggregates")
    ex.set_defaults(func=_export)
