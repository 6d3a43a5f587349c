"""Fixtures for the ratings tests: a fresh store, a fake reply function, synthetic tournaments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rp_eval.chat.generate import GenerationResult
from rp_eval.ratings.bt import expected_win_rate
from rp_eval.store import get_store


@pytest.fixture
def store(workspace, database_url, monkeypatch):
    """A fresh store on each supported database (SQLite, and PostgreSQL where a server is given); the app's own
    store (get_store, used by the CLI) is the same database."""
    if not database_url.startswith("sqlite"):
        monkeypatch.setenv("RP_EVAL_DATABASE_URL", database_url)
    return get_store()


def fake_reply(model, messages, settings):
    """A reply that names nothing but depends on the model and the conversation (no weights needed)."""
    turn = sum(m["role"] == "user" for m in messages)
    text = f"返事{turn}番、{len(model) % 7}の声で。"
    return GenerationResult(text, text, "eos", False, 10, 5, 0.01, 0.001, 500.0)


@pytest.fixture
def reply():
    return fake_reply


def tournament(strengths: dict[str, float], n: int, seed: int = 0, tie_rate: float = 0.0) -> pd.DataFrame:
    """Votes drawn from known Elo strengths: random pairs, the winner drawn from the Bradley-Terry chance."""
    rng = np.random.default_rng(seed)
    models = list(strengths)
    rows = []
    for _ in range(n):
        a, b = rng.choice(models, 2, replace=False)
        if rng.random() < tie_rate:
            winner = "tie"
        else:
            winner = "model_a" if rng.random() < expected_win_rate(strengths[a], strengths[b]) else "model_b"
        rows.append({"model_a": a, "model_b": b, "winner": winner, "rater": f"r{rng.integers(3)}"})
    return pd.DataFrame(rows)
