"""The search space of an evolutionary merge ("genome") and the map from a point in it to a mergekit recipe.

A genotype is a flat vector (what CMA-ES works on) read as [layer groups × models × parameter sets × method
parameters], as in mergekit's `mergekit.evo.genome`: each group of `layer_granularity` layers gets its own
weights (and densities, or slerp's t), optionally separately for attention, MLP and the rest. `decode` turns it
into `Decoded` values, from which both the recipe (mergekit YAML, one slice per layer group, which
`mergekit-yaml` accepts) and the in-memory build read, so the two always agree.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError, model_validator

from rp_eval.errors import RpEvalError
from rp_eval.merge import recipe as recipes

Method = Literal["linear", "slerp", "task_arithmetic", "ties", "dare_ties"]
# The genotype's parameters of each method, per (group, model, parameter set).
METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "linear": ("weight",),
    "slerp": ("t",),
    "task_arithmetic": ("weight",),
    "ties": ("weight", "density"),
    "dare_ties": ("weight", "density"),
}
# The substrings of tensor names that get their own parameters when `split_attention_mlp` is on (mergekit filters).
FILTERS = ("self_attn", "mlp")
NAME = re.compile(r"\w[\w.-]{0,99}")
START = {"weight": None, "density": 0.7, "t": 0.5}  # weight starts at 1 / number of models


class GenomeError(RpEvalError):
    """A genome that can not be searched: the message names the field."""


class Genome(BaseModel, frozen=True, extra="forbid"):
    name: str = "genome"
    models: list[str] = Field(min_length=1)  # the models merged into the base (registered names, folders)
    base_model: str | None = None  # needed by every method but linear
    method: Method = "dare_ties"
    layer_granularity: int = Field(0, ge=0)  # layers per group; 0: one group for all layers
    split_attention_mlp: bool = False  # separate parameters for attention, MLP and the rest
    normalize: bool | None = None  # None: the method's default in mergekit (linear, ties: on)
    allow_negative: bool = False  # whether weights may be negative (else |x|)
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"

    @model_validator(mode="after")
    def _check(self) -> Genome:
        if not NAME.fullmatch(self.name):  # the name is a file name (genomes/NAME.yaml) and a run folder
            raise GenomeError(key="err_bad_name", name=self.name)
        if self.method != "linear" and not self.base_model:
            raise GenomeError(key="err_genome_needs_base", method=self.method)
        if self.method == "slerp" and len(self.models) != 1:
            raise GenomeError(key="err_genome_slerp")
        if self.method == "linear" and len(self.models) < 2:
            raise GenomeError(key="err_genome_linear")
        if self.base_model and self.base_model in self.models:
            raise GenomeError(key="err_genome_base_twice", base=self.base_model)
        return self

    @property
    def params(self) -> tuple[str, ...]:
        return METHOD_PARAMS[self.method]

    @property
    def sets(self) -> int:
        return len(FILTERS) + 1 if self.split_attention_mlp else 1

    def groups(self, num_layers: int) -> int:
        if self.layer_granularity and num_layers % self.layer_granularity:
            raise GenomeError(
                f"layer_granularity {self.layer_granularity} does not divide the layer count {num_layers}"
            )
        return num_layers // self.layer_granularity if self.layer_granularity else 1

    def shape(self, num_layers: int) -> tuple[int, int, int, int]:
        return (self.groups(num_layers), len(self.models), self.sets, len(self.params))

    def x0(self, num_layers: int) -> np.ndarray:
        x = np.zeros(self.shape(num_layers))
        for k, p in enumerate(self.params):
            x[..., k] = START[p] if START[p] is not None else 1 / len(self.models)
        return x.reshape(-1)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(), sort_keys=False, allow_unicode=True)

    def digest(self) -> str:
        return hashlib.sha256(self.to_yaml().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Decoded:
    """A genotype's merge parameters: values[group, model, set, param], after the genome's constraints."""

    genome: Genome
    num_layers: int
    values: np.ndarray

    def value(self, group: int, model: int, set_: int, param: str) -> float:
        return float(self.values[group, model, set_, self.genome.params.index(param)])

    @property
    def normalize(self) -> bool:
        n = self.genome.normalize
        return n if n is not None else self.genome.method in ("linear", "ties")


def decode(genome: Genome, num_layers: int, x) -> Decoded:
    v = np.asarray(x, dtype=np.float64).reshape(genome.shape(num_layers)).copy()
    for k, p in enumerate(genome.params):
        if p == "density":
            v[..., k] = np.clip(np.abs(v[..., k]), 0.0, 1.0)
        elif p == "t":
            v[..., k] = np.clip(v[..., k], 0.0, 1.0)
        elif not genome.allow_negative:
            v[..., k] = np.abs(v[..., k])
    return Decoded(genome, num_layers, v)


def _setting(d: Decoded, group: int, model: int, param: str):
    if d.genome.sets == 1:
        return round(d.value(group, model, 0, param), 6)
    filters = [*FILTERS, None]
    return [{"filter": f, "value": round(d.value(group, model, s, param), 6)} for s, f in enumerate(filters)]


def to_recipe(d: Decoded) -> dict:
    """The mergekit recipe (a dict for `MergeConfiguration`): one slice per layer group."""
    g = d.genome
    step = g.layer_granularity or d.num_layers
    slices = []
    for group in range(d.values.shape[0]):
        layers = [group * step, (group + 1) * step]
        if g.method == "slerp":
            sources = [{"model": g.base_model, "layer_range": layers}, {"model": g.models[0], "layer_range": layers}]
            slices.append({"sources": sources, "parameters": {"t": _setting(d, group, 0, "t")}})
            continue
        sources = [
            {"model": m, "layer_range": layers, "parameters": {p: _setting(d, group, i, p) for p in g.params}}
            for i, m in enumerate(g.models)
        ]
        if g.base_model and g.method != "linear":
            sources.append({"model": g.base_model, "layer_range": layers})
        slices.append({"sources": sources})
    data: dict = {"merge_method": g.method, "slices": slices}
    if g.method != "linear" and g.base_model:
        data["base_model"] = g.base_model
    if g.method != "slerp":
        data["parameters"] = {"normalize": d.normalize}
    else:  # every slice sets its own t; the global one (slice 0's) only satisfies recipe checkers that look there
        data["parameters"] = {"t": slices[0]["parameters"]["t"]}
    data["dtype"] = g.dtype
    return data


def recipe_yaml(d: Decoded) -> str:
    return recipes.to_yaml(to_recipe(d))


# -- genome files: <workspace>/evolve/genomes/NAME.yaml (never the source checkout) ----------------------------


def genomes_dir() -> Path:
    from rp_eval import settings

    path = settings.home() / "evolve" / "genomes"
    path.mkdir(parents=True, exist_ok=True)
    return path


def parse_genome(text: str) -> Genome:
    import yaml

    try:
        data = yaml.safe_load(text)
        return Genome.model_validate(data if isinstance(data, dict) else {})
    except yaml.YAMLError as err:
        raise GenomeError(key="err_genome_yaml", detail=err) from err
    except RecursionError:
        raise GenomeError(key="err_genome_deep") from None
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "genome"
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, RpEvalError) and cause.key:  # the genome's own checks: keyed, worded by the page
            raise GenomeError(key="err_genome_field", field=field, text=cause) from err
        raise GenomeError(key="err_genome_field", field=field, text=first["msg"].removeprefix("Value error, ")) from err


def save_genome(genome: Genome) -> Path:
    path = genomes_dir() / f"{genome.name}.yaml"
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(genome.to_yaml(), encoding="utf-8")
    tmp.replace(path)
    return path


def load_genome(ref: str) -> Genome:
    path = Path(ref)
    if not path.is_file():
        path = genomes_dir() / f"{ref.removesuffix('.yaml')}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in genomes_dir().glob("*.yaml")) or "none"
        raise GenomeError(key="err_genome_missing", ref=ref, folder=genomes_dir(), known=known)
    try:
        return parse_genome(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise GenomeError(key="err_genome_unreadable", path=path, detail=err) from err


def list_genomes() -> list[str]:
    return sorted(p.stem for p in genomes_dir().glob("*.yaml"))
