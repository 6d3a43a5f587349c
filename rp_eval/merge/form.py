"""The recipe builder's form as data, and the two-way conversion between it and mergekit's recipe dict.

Every value cell holds YAML flow text, so a scalar (`0.5`), a gradient over layers (`[0, 0.3, 1]`) and a
filtered setting (`[{filter: mlp, value: 0.5}, {value: 0}]`) all fit and round-trip losslessly. Global
parameters get two convenience columns for the `self_attn` and `mlp` filters.
"""

from __future__ import annotations

import yaml
from pydantic import BaseModel, ConfigDict

from rp_eval import yaml_text
from rp_eval.errors import Said
from rp_eval.merge.methods import methods
from rp_eval.merge.recipe import RecipeError

INPUT_COLUMNS = ["model", "slice", "layer_range", "weight", "density", "other"]
PARAM_COLUMNS = ["parameter", "value", "self_attn", "mlp"]
FILTERS = ("self_attn", "mlp")
UNSUPPORTED = ("modules", "tokenizer")


class InputRow(BaseModel):
    model_config = ConfigDict(frozen=True)
    model: str
    slice: str = ""  # slice number when the recipe uses slices
    layer_range: str = ""
    weight: str = ""
    density: str = ""
    other: str = ""  # other per-model parameters, a flow mapping


class ParamRow(BaseModel):
    model_config = ConfigDict(frozen=True)
    parameter: str
    value: str = ""
    self_attn: str = ""
    mlp: str = ""


class RecipeForm(BaseModel):
    model_config = ConfigDict(frozen=True)
    merge_method: str = "slerp"
    base_model: str = ""
    inputs: tuple[InputRow, ...] = ()
    parameters: tuple[ParamRow, ...] = ()
    dtype: str = ""
    out_dtype: str = ""
    tokenizer_source: str = ""
    chat_template: str = ""


def cell(value) -> str:
    if value is None:
        return ""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6, allow_unicode=True)
    return text.removesuffix("\n...\n").strip()


def uncell(text, field: str):
    text = "" if text is None else str(text).strip()
    if not text:
        return None
    try:
        return yaml_text.load(text)
    except yaml_text.TooLarge as err:
        raise RecipeError(Said("recipe_yaml_expands", limit=yaml_text.MAX_NODES), field) from err
    except (yaml.YAMLError, RecursionError) as err:
        raise RecipeError(Said("recipe_cell_value", text=text[:200]), field) from err


def _split_filters(value) -> dict[str, str] | None:
    """{value, self_attn, mlp} cells when `value` is a filter list the columns can show, else None."""
    if not isinstance(value, list) or not value or not all(isinstance(c, dict) and "value" in c for c in value):
        return None
    order = [c.get("filter") for c in value]
    allowed = [f for f in (*FILTERS, None) if f in order]
    if order != allowed or any(set(c) - {"value", "filter"} for c in value):
        return None
    return {(c.get("filter") or "value"): cell(c["value"]) for c in value}


def _param_row(name: str, value) -> ParamRow:
    split = _split_filters(value)
    return ParamRow(parameter=name, **split) if split else ParamRow(parameter=name, value=cell(value))


def to_form(data: dict) -> RecipeForm:
    """The form for a recipe dict (as loaded from YAML, validated or not)."""
    for key in UNSUPPORTED:
        if data.get(key):
            raise RecipeError(Said("recipe_form_key", key=key), key)
    rows = []
    for m in data.get("models") or []:
        rows.append(_input_row(m, ""))
    for i, sl in enumerate(data.get("slices") or []):
        if set(sl) - {"sources"}:
            extra = ", ".join(sorted(set(sl) - {"sources"}))
            raise RecipeError(Said("recipe_form_slice", extra=extra), f"slices.{i}")
        rows += [_input_row(src, str(i)) for src in sl["sources"]]
    return RecipeForm(
        merge_method=str(data.get("merge_method", "")),
        base_model=str(data.get("base_model") or ""),
        inputs=tuple(rows),
        parameters=tuple(_param_row(k, v) for k, v in (data.get("parameters") or {}).items()),
        dtype=str(data.get("dtype") or ""),
        out_dtype=str(data.get("out_dtype") or ""),
        tokenizer_source=str(data.get("tokenizer_source") or ""),
        chat_template=str(data.get("chat_template") or ""),
    )


def _input_row(entry: dict, slice_no: str) -> InputRow:
    params = dict(entry.get("parameters") or {})
    return InputRow(
        model=str(entry["model"]),
        slice=slice_no,
        layer_range=cell(entry.get("layer_range")),
        weight=cell(params.pop("weight", None)),
        density=cell(params.pop("density", None)),
        other=cell(params) if params else "",
    )


def from_form(form: RecipeForm) -> dict:
    """mergekit's recipe dict for the form, keys in mergekit's usual order."""
    entries = []
    for i, row in enumerate(form.inputs):
        if not row.model.strip():
            continue
        field = f"inputs.{i}"
        params = {}
        for name in ("weight", "density"):
            value = uncell(getattr(row, name), f"{field}.{name}")
            if value is not None:
                params[name] = value
        other = uncell(row.other, f"{field}.other")
        if other is not None and not isinstance(other, dict):
            raise RecipeError(Said("recipe_other_mapping"), f"{field}.other")
        params.update(other or {})
        entry = {"model": row.model.strip()}
        layer_range = uncell(row.layer_range, f"{field}.layer_range")
        if layer_range is not None:
            if not (isinstance(layer_range, list) and len(layer_range) == 2):
                raise RecipeError(Said("recipe_layer_range_form"), f"{field}.layer_range")
            entry["layer_range"] = layer_range
        if params:
            entry["parameters"] = params
        entries.append((str(row.slice).strip(), entry))
    data: dict = {}
    if any(s or "layer_range" in e for s, e in entries):
        slices: dict[str, list] = {}
        for s, e in entries:
            slices.setdefault(s or "0", []).append(e)
        data["slices"] = [{"sources": v} for _, v in sorted(slices.items(), key=lambda kv: _slice_key(kv[0]))]
    else:
        data["models"] = [e for _, e in entries]
    data["merge_method"] = form.merge_method
    if form.base_model:
        data["base_model"] = form.base_model
    params = {}
    for row in form.parameters:
        if not row.parameter.strip():
            continue
        field = f"parameters.{row.parameter}"
        conds = [{"filter": f, "value": uncell(getattr(row, f), field)} for f in FILTERS if getattr(row, f).strip()]
        value = uncell(row.value, field)
        if conds:
            params[row.parameter] = conds + ([{"value": value}] if value is not None else [])
        elif value is not None:
            params[row.parameter] = value
    if params:
        data["parameters"] = params
    for key in ("dtype", "out_dtype", "tokenizer_source", "chat_template"):
        if getattr(form, key):
            data[key] = getattr(form, key)
    return data


def _slice_key(s: str):
    return (0, int(s)) if s.isdigit() else (1, s)


def defaults(method: str, models: list[str], keep: RecipeForm | None = None) -> RecipeForm:
    """A starting form for `method` over `models`: weights and densities the method uses, a base model when it
    needs one (the first model), `t: 0.5` for slerp-like methods. Rows of `keep` for the same models stay."""
    info = methods().get(method)
    kept = {r.model: r for r in (keep.inputs if keep else ())}
    per_model = info.per_model if info else ()
    base = (keep.base_model if keep and keep.base_model in models else "") or (
        models[0] if info and info.needs_base and models else ""
    )
    rows = []
    for m in models:
        if m in kept:
            rows.append(kept[m])
            continue
        weight = "" if "weight" not in per_model or (m == base and method != "nuslerp") else cell(1.0 / len(models))
        if method == "linear":
            weight = cell(1.0)
        density = cell(0.5) if "density" in per_model and m != base else ""
        rows.append(InputRow(model=m, weight=weight, density=density))
    params = tuple(keep.parameters) if keep and keep.merge_method == method else ()
    if not params and info and "t" in info.required:
        params = (ParamRow(parameter="t", value="0.5"),)
    return RecipeForm(
        merge_method=method,
        base_model=base,
        inputs=tuple(rows),
        parameters=params,
        dtype=keep.dtype if keep else "",
        tokenizer_source=keep.tokenizer_source if keep else "",
        chat_template=keep.chat_template if keep else "",
    )
