"""Which models can be merged with which, and by which methods, from their configs and tokenizers only.

No weights are read: the shapes come from `config.json` (through transformers' AutoConfig, which fills the
defaults such as `head_dim`), the tokenizer identity from the tokenizer's vocabulary.
Parameter-space methods (every mergekit method but passthrough) need the same architecture and the same
tensor shapes; a different vocabulary can be bridged with a `tokenizer_source`. Passthrough (layer stacking)
takes whole layers from each model, so the layers must have the same shapes; the layer count may differ.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from pathlib import Path

from rp_eval.errors import RpEvalError, Said, english
from rp_eval.merge.methods import is_parameter_space, method_names
from rp_eval.models.hub import HubUnreachable, hub_kwargs

# Fields that fix the shape of every layer; a difference in any of them forbids mixing layers.
LAYER_FIELDS = ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim")


class CompatibilityError(RpEvalError):
    """Models that can not be merged the way a recipe asks."""


@dataclass(frozen=True)
class ModelShape:
    name: str
    architecture: str
    model_type: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    rope: str
    tokenizer: str  # a short hash of the vocabulary, "" when the model has no readable tokenizer


@dataclass(frozen=True)
class PairCheck:
    a: str
    b: str
    methods: list[str]  # merge methods possible for this pair
    # each a `Said`: English text that the page can word again in its own language
    reasons: list[str] = field(default_factory=list)  # why some (or all) methods are not possible
    notes: list[str] = field(default_factory=list)  # possible, but worth knowing (tokenizer, rope)

    @property
    def parameter_space(self) -> bool:
        return any(is_parameter_space(m) for m in self.methods)

    def summary(self, say=english, render=str) -> str:
        """The verdict, reasons and notes in one line; `say` words the verdict and `render` the reasons (the UI
        passes its own two, for the page's language)."""
        if self.parameter_space:
            verdict = say("compat_all_methods") if "passthrough" in self.methods else ", ".join(self.methods)
        elif self.methods:
            verdict = say("compat_passthrough_only")
        else:
            verdict = say("compat_not_mergeable")
        return say("sep_reasons").join([verdict, *(render(r) for r in [*self.reasons, *self.notes])])


def _hub(source: str) -> dict:
    return {} if Path(source).expanduser().exists() else hub_kwargs(source)


def _source_of(model: str) -> tuple[str, str]:
    """(name, source): a registered model's folder or hub id, or the argument itself (a folder or hub id)."""
    from rp_eval.store import get_store

    row = get_store().get_model(model)
    return (row.name, row.source) if row is not None else (Path(model).name if Path(model).exists() else model, model)


@lru_cache(maxsize=64)
def _tokenizer_identity(source: str) -> str:
    from transformers import AutoTokenizer

    try:
        vocab = AutoTokenizer.from_pretrained(source, **_hub(source)).get_vocab()
    except (OSError, ValueError, TypeError, KeyError):  # HubUnreachable too: a ValueError
        return ""
    digest = hashlib.sha256(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode()).hexdigest()
    return digest[:12]


def read_shape(model: str) -> ModelShape:
    """The merge-relevant shape of a registered model, folder or hub id; reads config and tokenizer only."""
    from transformers import AutoConfig

    name, source = _source_of(model)
    try:
        extra = _hub(source)  # a hub id with no network: refused in seconds, with the hint
    except HubUnreachable as err:
        raise CompatibilityError(key=err.key, **err.values) from None
    try:
        config = AutoConfig.from_pretrained(source, **extra)
    except (OSError, ValueError) as err:
        raise CompatibilityError(key="err_compat_config", name=name, detail=str(err).splitlines()[0]) from err
    text = getattr(config, "get_text_config", lambda: config)()
    heads = getattr(text, "num_attention_heads", 0) or 0
    hidden = getattr(text, "hidden_size", 0) or 0
    rope = getattr(text, "rope_parameters", None) or {
        "rope_theta": getattr(text, "rope_theta", None),
        "rope_scaling": getattr(text, "rope_scaling", None),
    }
    return ModelShape(
        name=name,
        architecture=(getattr(config, "architectures", None) or [type(config).__name__])[0],
        model_type=config.model_type,
        hidden_size=hidden,
        num_hidden_layers=getattr(text, "num_hidden_layers", 0) or 0,
        num_attention_heads=heads,
        num_key_value_heads=getattr(text, "num_key_value_heads", None) or heads,
        head_dim=getattr(text, "head_dim", None) or (hidden // heads if heads else 0),
        intermediate_size=getattr(text, "intermediate_size", 0) or 0,
        vocab_size=getattr(text, "vocab_size", 0) or 0,
        rope=json.dumps(rope, sort_keys=True, default=str),
        tokenizer=_tokenizer_identity(source),
    )


def _differences(a: ModelShape, b: ModelShape, fields: tuple[str, ...]) -> list[str]:
    return [
        Said("compat_field", field=f, a=getattr(a, f), b=getattr(b, f))
        for f in fields
        if getattr(a, f) != getattr(b, f)
    ]


def check_pair(a: ModelShape, b: ModelShape) -> PairCheck:
    reasons: list[str] = []
    notes: list[str] = []
    layer_diff = _differences(a, b, LAYER_FIELDS)
    same_arch = a.architecture == b.architecture
    if not same_arch:
        reasons.append(Said("compat_architectures", a=a.architecture, b=b.architecture))
    if layer_diff:
        reasons.append(Said("compat_layer_shapes", differences=layer_diff))
    if a.num_hidden_layers != b.num_hidden_layers:
        reasons.append(Said("compat_layer_count", a=a.num_hidden_layers, b=b.num_hidden_layers))
    other_tokens = bool(a.tokenizer and b.tokenizer and a.tokenizer != b.tokenizer)
    if a.vocab_size != b.vocab_size or other_tokens:
        notes.append(Said("compat_vocab_tokens" if other_tokens else "compat_vocab", a=a.vocab_size, b=b.vocab_size))
    elif not (a.tokenizer and b.tokenizer):
        notes.append(Said("compat_no_tokenizer"))
    if a.rope != b.rope:
        notes.append(Said("compat_rope", a=a.rope, b=b.rope))
    methods: list[str] = []
    if same_arch and not layer_diff:
        methods.append("passthrough")
        if a.num_hidden_layers == b.num_hidden_layers:
            methods = [m for m in method_names() if is_parameter_space(m)] + methods
    return PairCheck(a.name, b.name, methods, reasons, notes)


def check_models(models: list[str]) -> list[PairCheck]:
    """Every pair of the given models (registered names, folders or hub ids), checked from configs only."""
    shapes = [read_shape(m) for m in dict.fromkeys(models)]
    return [check_pair(a, b) for a, b in combinations(shapes, 2)]


def matrix(models: list[str], say=english, render=str):
    """A models × models table of verdicts, for the tab's matrix view (`say`, `render`: see `PairCheck.summary`)."""
    import pandas as pd

    names = [read_shape(m).name for m in dict.fromkeys(models)]
    table = pd.DataFrame(str(say("compat_same_model")), index=names, columns=names)
    for pair in check_models(models):
        table.loc[pair.a, pair.b] = table.loc[pair.b, pair.a] = pair.summary(say, render)
    return table.reset_index(names="model")


def require_mergeable(models: list[str], method: str) -> None:
    """Raise CompatibilityError naming the differing fields when `method` can not merge these models."""
    for pair in check_models(models):
        if method not in pair.methods:
            why = tuple(pair.reasons) or (Said("compat_incompatible"),)
            raise CompatibilityError(key="err_compat_method", a=pair.a, b=pair.b, method=method, why=why)
