"""A fitness that predicts what this lab's raters prefer: metric weights fitted on its blind votes and chat choices.

Each preference is two replies to the same moment of a conversation, one preferred: a blind A/B vote with a
winner (ties and "both bad" say nothing about the order and are left out), or a chat preference (a kept
alternative, an edit, a stopped reply regenerated, a side picked; a choice between two replies of one model is as
good here as one between models, since the fitness scores replies). Every reply is measured with the automatic
metrics (`measure`, as the evaluation and the fitness do); the model is a Bradley-Terry model over replies,

    P(chosen preferred) = sigmoid(w · (directed(chosen) − directed(rejected))),   w ≥ 0,

fitted by scipy's L-BFGS-B with a small ridge term. The combined score with weights w (a weighted mean of the
directed metrics) then prefers the reply the model gives the higher chance, so `w` saved as a weights file is
the fitness of an evolution (the Evolve tab's "Fitness weights").

Its agreement with held-out blind votes: the blind votes are split in folds; each fold's votes are predicted by
weights fitted on every other preference (the chat choices always in), and the share where the fitted score
prefers the winner is reported beside the default weights' share on the same votes. The judge is not among the
fitted metrics (the stored votes carry no judge grade of their replies); its weight stays as it was (0 here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import minimize
from scipy.special import log_expit

from rp_eval.errors import RpEvalError, Said
from rp_eval.evaluate.metrics import Reply, measure
from rp_eval.evaluate.score import OPTIONAL, Weights, combined, directed, load_weights, weights_dir
from rp_eval.evaluate.task import Task, load_task
from rp_eval.store import Store
from rp_eval.store import chat as chat_store
from rp_eval.store import preferences as prefs

NAME = "human-preference"  # the weights file it writes in the workspace
MIN_PAIRS = 20  # fewer preferences than this: too few to calibrate
MIN_HELD_OUT = 10  # fewer blind votes with a winner than this: no held-out agreement
FOLDS = 5
RIDGE = 0.1


class PreferenceFitError(RpEvalError):
    """Too few preferences, or none that any metric tells apart."""


@dataclass
class Pair:
    source: str  # blind | chat
    chosen: dict[str, float]  # directed metrics of the preferred reply
    rejected: dict[str, float]


@dataclass
class PreferenceFit:
    weights: Weights
    blind: int  # blind votes with a winner used
    chat: int  # chat preferences used
    agreement: float | None  # held-out blind votes the fitted weights order as the rater did (None: too few)
    agreement_default: float | None  # ... the default weights, on the same votes
    held_out: int
    problems: list[str] = field(default_factory=list)

    @property
    def pairs(self) -> int:
        return self.blind + self.chat


def _reply(text: str, finish: str, last_user: str, persona) -> dict[str, float]:
    reply = Reply(
        text=text or "",
        finish_reason=finish or "eos",
        cut_mid_sentence=finish == "length",
        last_user=last_user,
        system=persona.system_text() if persona else "",
        character=persona.name if persona else "",
        **({"style": persona.style} if persona else {}),
    )
    return directed(measure(reply))


def _last(conversation: list, role: str) -> str:
    found = [m.get("content") or "" for m in conversation or [] if m.get("role") == role]
    return found[-1] if found else ""


def blind_pairs(store: Store, task: Task) -> list[Pair]:
    from rp_eval.ratings.records import load_votes

    out = []
    for v in load_votes(store).itertuples():
        if v.winner not in ("model_a", "model_b"):
            continue
        persona = task.personas.get(v.persona_id)
        user = _last(v.conversation_a, "user")
        a = _reply(_last(v.conversation_a, "assistant"), (v.finish_a or ["eos"])[-1], user, persona)
        b = _reply(_last(v.conversation_b, "assistant"), (v.finish_b or ["eos"])[-1], user, persona)
        out.append(Pair("blind", a, b) if v.winner == "model_a" else Pair("blind", b, a))
    return out


def chat_pairs(store: Store, task: Task) -> list[Pair]:
    out = []
    turns_of: dict[int, list] = {}
    for r in prefs.list_preferences(store, None):
        if r.conversation_id not in turns_of:
            turns_of[r.conversation_id] = chat_store.turns(store, r.conversation_id, include_discarded=True)
        turns = turns_of[r.conversation_id]
        by_id = {t.id: t for t in turns}
        user = next((t.content for t in reversed(turns) if t.role == "user" and t.id < r.chosen_turn), "")
        persona = task.personas.get(r.persona_id)
        chosen_turn, rejected_turn = by_id.get(r.chosen_turn), by_id.get(r.rejected_turn or -1)
        finish_chosen = "eos" if r.kind == "edit" or chosen_turn is None else chosen_turn.finish_reason
        finish_rejected = (chosen_turn if r.kind == "edit" else rejected_turn) or chosen_turn
        finish_rejected = finish_rejected.finish_reason if finish_rejected is not None else "eos"
        out.append(
            Pair(
                "chat",
                _reply(r.chosen, finish_chosen, user, persona),
                _reply(r.rejected, finish_rejected, user, persona),
            )
        )
    return out


def _design(pairs: list[Pair], names: list[str]) -> np.ndarray:
    return np.array([[p.chosen.get(n, 0.0) - p.rejected.get(n, 0.0) for n in names] for p in pairs], dtype=float)


def fit(d: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Non-negative weights w maximising sum log sigmoid(d @ w) − ridge·|w|² (L-BFGS-B on the exact gradient)."""

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = d @ w
        grad = -(d * (1 - np.exp(log_expit(z)))[:, None]).sum(axis=0) + 2 * ridge * w
        return float(-log_expit(z).sum() + ridge * w @ w), grad

    start = np.full(d.shape[1], 0.1)
    return minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(0, None)] * d.shape[1]).x


def _agrees(scores: np.ndarray) -> float:
    """Share of pairs the scores order as the person did (score of chosen − rejected > 0; equal: half)."""
    return float(np.mean(np.where(scores > 1e-12, 1.0, np.where(scores < -1e-12, 0.0, 0.5))))


def fit_preferences(
    store: Store, task: Task | None = None, default: Weights | None = None, folds: int = FOLDS, seed: int = 0
) -> PreferenceFit:
    """Weights fitted on every blind vote and chat preference of the store, with their held-out agreement."""
    task = task or load_task()
    default = default or load_weights()
    blind, chat = blind_pairs(store, task), chat_pairs(store, task)
    pairs = blind + chat
    if len(pairs) < MIN_PAIRS:
        raise PreferenceFitError(
            key="err_prefit_few", pairs=len(pairs), blind=len(blind), chat=len(chat), need=MIN_PAIRS
        )
    names = sorted({n for p in pairs for n in (*p.chosen, *p.rejected)} - set(OPTIONAL))
    d = _design(pairs, names)
    keep = [i for i, n in enumerate(names) if np.abs(d[:, i]).max() > 0]
    if not keep:
        raise PreferenceFitError(key="err_prefit_flat", pairs=len(pairs))
    names, d = [names[i] for i in keep], d[:, keep]
    w = fit(d)
    if not (w > 1e-9).any():
        raise PreferenceFitError(key="err_prefit_flat", pairs=len(pairs))
    problems: list[str] = []
    agreement = agreement_default = None
    n_blind = len(blind)
    if n_blind >= MIN_HELD_OUT:
        order = np.random.default_rng(seed).permutation(n_blind)
        predicted = np.zeros(n_blind)
        for fold in np.array_split(order, min(folds, n_blind)):
            train = np.setdiff1d(np.arange(len(pairs)), fold)
            predicted[fold] = d[fold] @ fit(d[train])
        agreement = round(_agrees(predicted), 4)
        by_default = np.array([combined(p.chosen, default) - combined(p.rejected, default) for p in blind])
        agreement_default = round(_agrees(by_default), 4)
    else:
        problems.append(Said("prefit_few_blind", n=n_blind, need=MIN_HELD_OUT))
    w = 10 * w / w.sum()
    fitted = {n: round(float(v), 4) for n, v in zip(names, w, strict=True)}
    fitted.update({o: 0.0 for o in OPTIONAL})
    notes = f"fitted on {n_blind} blind votes and {len(chat)} chat preferences"
    if agreement is not None:
        notes += f"; held-out blind-vote agreement {agreement:.3f} (default weights {agreement_default:.3f})"
    weights = Weights(name=NAME, weights=fitted, notes=notes).check()
    return PreferenceFit(weights, n_blind, len(chat), agreement, agreement_default, n_blind, problems)


def save(result: PreferenceFit, path: Path | None = None) -> Path:
    """The weights as a workspace weights file, with the fit's figures beside them (a temporary file, then moved);
    `load_weights` reads the weights and ignores the figures; `figures` reads them back."""
    path = path or weights_dir() / f"{result.weights.name}.yaml"
    body = {
        **result.weights.model_dump(),
        "preference_fit": {
            "blind_votes": result.blind,
            "chat_preferences": result.chat,
            "agreement": result.agreement,
            "agreement_default": result.agreement_default,
        },
    }
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(body, allow_unicode=True, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path


def figures(name: str) -> dict | None:
    """The fit's figures stored with the weights file `name` of the workspace (None: not a fitted one)."""
    path = weights_dir() / f"{name}.yaml"
    if not name or not path.exists():
        return None
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    found = body.get("preference_fit") if isinstance(body, dict) else None
    return found if isinstance(found, dict) else None


def agreement_text(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"
