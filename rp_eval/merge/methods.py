"""The merge methods the form offers: every method the installed mergekit registers, read from its own registry
(`mergekit.merge_methods.registry`), so a mergekit upgrade brings its new methods along."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class MethodInfo:
    name: str
    pretty_name: str
    reference: str
    base: str  # required | optional | ignored | forbidden (mergekit's BasePolicy)
    min_inputs: int
    max_inputs: int | None
    per_model: tuple[str, ...]  # parameters set per input model (weight, density, ...)
    shared: tuple[str, ...]  # parameters set once for the merge (t, normalize, int8_mask, ...)
    required: tuple[str, ...]  # parameters without a default
    non_base: tuple[str, ...] = ()  # per-model parameters the base model does not take

    @property
    def needs_base(self) -> bool:
        return self.base == "required"


@cache
def methods() -> dict[str, MethodInfo]:
    from mergekit.merge_methods.base import ParameterScope
    from mergekit.merge_methods.registry import registered_methods

    out = {}
    for method in registered_methods():
        spec = method.spec
        out[spec.name] = MethodInfo(
            name=spec.name,
            pretty_name=spec.pretty_name or spec.name,
            reference=spec.reference_url or "",
            base=spec.contract.base.value,
            min_inputs=spec.contract.min_inputs,
            max_inputs=spec.contract.max_inputs,
            per_model=tuple(p.name for p in spec.parameters if p.scope != ParameterScope.SHARED),
            shared=tuple(p.name for p in spec.parameters if p.scope == ParameterScope.SHARED),
            required=tuple(p.name for p in spec.parameters if p.required),
            non_base=tuple(p.name for p in spec.parameters if p.scope == ParameterScope.NON_BASE),
        )
    return out


def method_names() -> list[str]:
    return list(methods())


def is_parameter_space(name: str) -> bool:
    """Every method but layer stacking combines the same tensor of several models, so it needs equal shapes."""
    return name != "passthrough"
