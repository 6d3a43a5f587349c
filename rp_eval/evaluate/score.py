"""The combined score: a weighted mean of the directed metrics, each put on [0, 1] with 1 the good end.

Range [0, 1], higher is better; a metric missing from a reply (an optional one that was off) is left out of
that reply's mean. Weights live in YAML (`prompts/eval/weights.yaml` by default; calibrated ones in the
workspace). The same function is the evolutionary fitness, through `fitness.py`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from rp_eval import settings
from rp_eval.errors import RpEvalError
from rp_eval.evaluate.metrics import BY_NAME

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "prompts" / "eval" / "weights.yaml"
# model-based metrics (extras.py), on [0, 1] with 1 good, present only when turned on
OPTIONAL = ("judge", "ref_likelihood")


class WeightsError(RpEvalError):
    """A weights file that can not be used."""


class Weights(BaseModel, frozen=True):
    name: str = "default"
    weights: dict[str, float] = Field(default_factory=dict)
    notes: str = ""

    def check(self) -> Weights:
        for metric, w in self.weights.items():
            if metric not in OPTIONAL and (metric not in BY_NAME or BY_NAME[metric].good is None):
                raise WeightsError(key="err_weights_metric", name=self.name, metric=metric)
            if w < 0:
                raise WeightsError(key="err_weights_negative", name=self.name, metric=metric, weight=w)
        if not any(w > 0 for w in self.weights.values()):
            raise WeightsError(key="err_weights_zero", name=self.name)
        return self


def weights_dir() -> Path:
    path = settings.home() / "evaluate" / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_weights(source: str | Path | None = None) -> Weights:
    """Weights from a YAML path, or by name from the workspace (`calibrated`), or the defaults."""
    path = Path(source) if source else DEFAULT_WEIGHTS
    if source and not path.exists() and (weights_dir() / f"{source}.yaml").exists():
        path = weights_dir() / f"{source}.yaml"
    if not path.exists():
        raise WeightsError(key="err_weights_missing", source=source, folder=weights_dir())
    try:
        return Weights.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))).check()
    except (yaml.YAMLError, ValidationError) as err:
        raise WeightsError(key="err_weights_file", path=path, detail=str(err).splitlines()[0]) from None


def save_weights(weights: Weights, path: Path | None = None) -> Path:
    """Write weights as YAML (to a temporary file, then moved into place); returns the path."""
    path = path or weights_dir() / f"{weights.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(weights.model_dump(), fh, allow_unicode=True, sort_keys=False)
    os.replace(tmp, path)
    return path


def directed(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics that have a direction, on [0, 1] with 1 the good end."""
    out = {name: v for name, v in metrics.items() if name in OPTIONAL}
    for name, v in metrics.items():
        if name in BY_NAME and (s := BY_NAME[name].score(v)) is not None:
            out[name] = s
    return out


def combined(metrics: dict[str, float], weights: Weights) -> float:
    """The combined score of one reply on [0, 1], higher is better."""
    good = directed(metrics)
    used = {k: w for k, w in weights.weights.items() if w > 0 and k in good}
    total = sum(used.values())
    return round(sum(good[k] * w for k, w in used.items()) / total, 6) if total else 0.0
