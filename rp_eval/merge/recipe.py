"""Merge recipes: mergekit YAML text in, a validated `MergeConfiguration` out, with errors that point at the field.

mergekit's own `MergeConfiguration` does the structural validation; on top of it this module checks what
mergekit only finds out once the merge is running: an unknown method, a missing base model, a parameter the
method needs, a value that is not a number, a layer range beyond the model, and (through `compat`) models whose
shapes do not allow the method. Recipes are files in `merges/` (or `RP_EVAL_RECIPES`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from rp_eval import yaml_text
from rp_eval.errors import RpEvalError, Said, said
from rp_eval.merge.methods import methods

ROOT = Path(__file__).resolve().parents[2]
MODEL_KEYS = ("model", "base_model")


class RecipeError(RpEvalError):
    """A recipe that can not be read or would fail; `field` names where (e.g. `models.1.parameters.weight`)."""

    def __init__(self, message: str, field: str = "") -> None:
        # keyed, so that a `Said` message is worded again in the page's language (plain text is shown as it is)
        super().__init__(key="err_recipe_field" if field else "err_recipe", field=field, text=message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


def recipes_dir() -> Path:
    path = Path(os.environ.get("RP_EVAL_RECIPES", ROOT / "merges"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_yaml(text: str) -> dict:
    """The recipe as a dict; malformed YAML is reported with its line and column."""
    try:
        data = yaml_text.load(text)  # safe_load, with a cap on what aliases expand to (billion laughs)
    except yaml_text.TooLarge as err:
        raise RecipeError(Said("recipe_yaml_expands", limit=yaml_text.MAX_NODES), "yaml") from err
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        message = Said("recipe_yaml_at", line=mark.line + 1, column=mark.column + 1, problem=err.problem) if mark \
            else Said("recipe_yaml", problem=err.problem)  # fmt: skip
        raise RecipeError(message, "yaml") from err
    except yaml.YAMLError as err:  # e.g. a character YAML does not allow (ReaderError has no mark)
        raise RecipeError(Said("recipe_yaml", problem=err), "yaml") from err
    except RecursionError:
        raise RecipeError(Said("recipe_yaml_deep"), "yaml") from None
    if not isinstance(data, dict):
        raise RecipeError(Said("recipe_not_mapping"), "yaml")
    return data


def parse(data: dict | str):
    """Validate with mergekit's MergeConfiguration; returns it. Raises RecipeError naming the field."""
    from mergekit.config import MergeConfiguration

    if isinstance(data, str):
        data = load_yaml(data)
    try:
        return MergeConfiguration.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("function-", "union[")))
        kind = _PYDANTIC_KINDS.get(first["type"])
        raise RecipeError(Said(kind) if kind else first["msg"], field or "recipe") from err
    except RuntimeError as err:  # mergekit's own validators raise RuntimeError
        known = next((key for text, key in _MERGEKIT_SAYS.items() if text in str(err)), None)
        raise RecipeError(Said(known) if known else str(err), "models") from err


# pydantic's error types as messages the page words in its language (any other type: pydantic's English text)
_PYDANTIC_KINDS = {
    "missing": "recipe_field_missing",
    "list_type": "recipe_list_type",
    "string_type": "recipe_string_type",
    "dict_type": "recipe_dict_type",
    "model_type": "recipe_dict_type",
    "model_attributes_type": "recipe_dict_type",
    "float_type": "recipe_number_type",
    "float_parsing": "recipe_number_type",
    "int_type": "recipe_int_type",
    "int_parsing": "recipe_int_type",
    "int_from_float": "recipe_int_type",
    "bool_type": "recipe_bool_type",
    "bool_parsing": "recipe_bool_type",
    "extra_forbidden": "recipe_extra",
}
# mergekit's own validators' messages (MergeConfiguration), by a part of their text
_MERGEKIT_SAYS = {
    "Exactly one of 'models', 'slices', or 'modules'": "recipe_one_of_inputs",
    "Must specify either output slices or models": "recipe_one_of_inputs",
    "Cannot specify both tokenizer_source and tokenizer": "recipe_two_tokenizers",
}


def to_yaml(data: dict) -> str:
    """mergekit's YAML style (flow lists of numbers), keys in the order of the dict."""
    from mergekit.config import ConfigYamlDumper

    return yaml.dump(data, Dumper=ConfigYamlDumper, sort_keys=False, allow_unicode=True, width=120)


def map_models(data: dict, mapping) -> dict:
    """A copy of a recipe dict with every model reference passed through `mapping(name) -> name`."""
    if isinstance(data, list):
        return [map_models(v, mapping) for v in data]
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        if (
            key in MODEL_KEYS
            and isinstance(value, str)
            or key == "tokenizer_source"
            and isinstance(value, str)
            and value not in ("base", "union")
        ):
            out[key] = mapping(value)
        else:
            out[key] = map_models(value, mapping)
    return out


def sources(config) -> list[str]:
    """Every model, adapter (`model+lora`) and tokenizer source a parsed recipe names, in order, once each.
    Walks the whole parsed configuration, so no nested form is missed (`model: {model: {path: ...}}`,
    `tokenizer: {source: ...}`, token embeddings, slices, modules, `base_model`)."""
    from mergekit.common import ModelPath
    from pydantic import BaseModel

    found: list[str] = []
    stack = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, ModelPath):
            found.append(str(value.path))
        elif isinstance(value, BaseModel):
            stack.extend(getattr(value, name) for name in reversed(type(value).model_fields))
        elif isinstance(value, dict):
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend(reversed(list(value)))
    return list(dict.fromkeys(found))


def confine(data: dict | str) -> list[str]:
    """Every source of the recipe checked against the allowed folders (rp_eval.paths): a registered model's name
    or a hub id passes, a local path outside them raises PathNotAllowed naming it. Returns the sources."""
    from rp_eval import paths

    found = sources(parse(data))
    for source in found:
        paths.confine_model_ref(source)
    return found


def _inputs(config) -> list[tuple[str, dict, tuple[int, int] | None, str]]:
    """(model, parameters, layer_range, field) for every input of the recipe."""
    if config.models:
        return [(str(m.model), m.parameters or {}, None, f"models.{i}") for i, m in enumerate(config.models)]
    return [
        (str(s.model), s.parameters or {}, tuple(s.layer_range), f"slices.{i}.sources.{j}")
        for i, sl in enumerate(config.slices or [])
        for j, s in enumerate(sl.sources)
    ]


def _scalars(setting) -> list:
    if isinstance(setting, dict):
        return _scalars(setting.get("value"))
    if hasattr(setting, "value"):
        return _scalars(setting.value)
    if isinstance(setting, list):
        return [x for s in setting for x in _scalars(s)]
    return [setting]


def _check_values(method_name: str, params: dict, field: str, problems: list[Problem]) -> None:
    from mergekit.merge_methods.registry import get

    specs = {p.name: p for p in get(method_name).spec.parameters}
    for name, setting in params.items():
        spec = specs.get(name)
        if spec is None:
            continue  # mergekit ignores parameters a method does not use
        for value in _scalars(setting):
            try:
                spec.validate(value)
            except ValidationError:
                problems.append(Problem(f"{field}.{name}", Said("recipe_not_number", value=value, name=name)))


def problems(data: dict | str, check_shapes: bool = True, resolve=None) -> list[Problem]:
    """Everything wrong with a recipe, each with the field it is about; empty when it can run.

    `resolve(name) -> source` maps a model reference to where its config lives (default: registered
    name, else the reference itself)."""
    try:
        config = parse(data)
    except RecipeError as err:
        return [Problem(err.field, err.message)]
    info = methods().get(config.merge_method)
    if info is None:
        known = ", ".join(methods())
        return [Problem("merge_method", Said("recipe_unknown_method", method=config.merge_method, known=known))]
    found: list[Problem] = []
    inputs = _inputs(config)
    if info.needs_base and not config.base_model:
        found.append(Problem("base_model", Said("recipe_needs_base", method=config.merge_method)))
    n = len({m for m, *_ in inputs} | ({str(config.base_model)} if config.base_model else set()))
    if config.models and n < info.min_inputs:
        found.append(Problem("models", Said("recipe_too_few", method=config.merge_method, low=info.min_inputs, n=n)))
    if config.models and info.max_inputs and n > info.max_inputs:
        found.append(Problem("models", Said("recipe_too_many", method=config.merge_method, high=info.max_inputs, n=n)))
    _check_values(config.merge_method, config.parameters or {}, "parameters", found)
    for model, params, _, field in inputs:
        _check_values(config.merge_method, params, f"{field}.parameters", found)
        is_base = bool(config.base_model) and model == str(config.base_model)
        for name in info.required:
            if name in info.shared or name in (config.parameters or {}) or name in params:
                continue
            if not (is_base and name in info.non_base):
                needs = Said("recipe_needs_for", method=config.merge_method, name=name, model=model)
                found.append(Problem(f"{field}.parameters.{name}", needs))
    for name in info.required:
        if name in info.shared and name not in (config.parameters or {}):
            found.append(Problem(f"parameters.{name}", Said("recipe_needs", method=config.merge_method, name=name)))
    if check_shapes and not found:
        found += _shape_problems(config, inputs, resolve)
    return found


def _shape_problems(config, inputs, resolve) -> list[Problem]:
    from rp_eval.merge.compat import CompatibilityError, check_models, read_shape

    resolve = resolve or _registered_source
    refs = list(dict.fromkeys([m for m, *_ in inputs] + ([str(config.base_model)] if config.base_model else [])))
    try:
        shapes = {m: read_shape(resolve(m)) for m in refs}
    except CompatibilityError as err:
        return [Problem("models", said(err))]
    found = []
    for model, _, layer_range, field in inputs:
        layers = shapes[model].num_hidden_layers
        if layer_range and not (0 <= layer_range[0] < layer_range[1] <= layers):
            beyond = Said("recipe_layer_range", range=list(layer_range), model=model, layers=layers)
            found.append(Problem(f"{field}.layer_range", beyond))
    if found or len(refs) < 2:
        return found
    for pair in check_models([resolve(m) for m in refs]):
        if config.merge_method not in pair.methods:
            why = tuple(pair.reasons) or (Said("compat_incompatible"),)
            said_why = Said("err_compat_method", a=pair.a, b=pair.b, method=config.merge_method, why=why)
            found.append(Problem("models", said_why))
    return found


def _registered_source(name: str) -> str:
    from rp_eval.store import get_store

    row = get_store().get_model(name)
    return row.source if row is not None else name


def validate(data: dict | str, check_shapes: bool = True, resolve=None):
    """The MergeConfiguration, or RecipeError with every problem (the first one's field as `field`)."""
    found = problems(data, check_shapes, resolve)
    if found:
        if len(found) == 1:
            raise RecipeError(found[0].message, found[0].field)
        rest = tuple(Said("err_recipe_field", field=p.field, text=p.message) for p in found[1:])
        raise RecipeError(Said("recipe_and_more", first=found[0].message, rest=rest), found[0].field)
    return parse(data)


# -- files in merges/ -------------------------------------------------------------------------------------


def _path(name: str) -> Path:
    stem = re.sub(r"[^\w.-]+", "-", name.strip()).strip("-.").removesuffix(".yaml").removesuffix(".yml")
    if not stem:
        raise RecipeError(Said("recipe_no_name"), "name")
    return recipes_dir() / f"{stem}.yaml"


def list_recipes() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.y*ml") if p.is_file())


def load_recipe(name: str) -> str:
    for suffix in (".yaml", ".yml"):
        path = recipes_dir() / f"{name.removesuffix('.yaml').removesuffix('.yml')}{suffix}"
        if path.exists() and path.resolve().parent == recipes_dir().resolve():  # a name, not a path out of merges/
            return path.read_text(encoding="utf-8")
    raise RecipeError(Said("recipe_missing", name=name, folder=recipes_dir(), known=", ".join(list_recipes()) or "-"))


def save_recipe(name: str, text: str, overwrite: bool = True) -> Path:
    """Validate the structure and values (not the shapes) and write the file atomically."""
    validate(text, check_shapes=False)  # an unknown method or a bad value must not replace a good file
    path = _path(name)
    if path.exists() and not overwrite:
        raise RecipeError(Said("recipe_exists", name=path.stem), "name")
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def duplicate_recipe(name: str, new_name: str) -> Path:
    return save_recipe(new_name, load_recipe(name), overwrite=False)
