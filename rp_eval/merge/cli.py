"""`rp-eval merge ...`: methods, check, validate, list, show, run: the same functions as the Merge tab."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _recipe_text(ref: str) -> str:
    from rp_eval.merge import recipe

    path = Path(ref)
    return path.read_text(encoding="utf-8") if path.is_file() else recipe.load_recipe(ref)


def _merge(args: argparse.Namespace) -> int:
    from rp_eval.merge import compat, recipe
    from rp_eval.merge.methods import methods

    if args.action == "methods":
        for m in methods().values():
            base = "needs a base model" if m.needs_base else f"base {m.base}"
            print(f"{m.name:18} {m.pretty_name:28} {base:20} {', '.join(m.per_model + m.shared)}")
    elif args.action == "list":
        print("\n".join(recipe.list_recipes()) or f"no recipes in {recipe.recipes_dir()}")
    elif args.action == "show":
        print(_recipe_text(_need(args, 1)[0]), end="")
    elif args.action == "check":
        pairs = compat.check_models(_need(args, 2))
        if args.json:
            print(json.dumps([p.__dict__ for p in pairs], ensure_ascii=False, indent=1))
        for p in [] if args.json else pairs:
            print(f"{p.a} × {p.b}: {p.summary()}")
    elif args.action == "validate":
        found = recipe.problems(_recipe_text(_need(args, 1)[0]), check_shapes=not args.no_shapes)
        for p in found:
            print(f"{p.field}: {p.message}", file=sys.stderr)
        if not found:
            print("ok")
        return 2 if found else 0
    elif args.action == "run":
        from rp_eval.merge.run import merge_all

        text = _recipe_text(_need(args, 1)[0])
        name = args.name or Path(args.items[0]).stem
        last = merge_all(text, name, _bar())
        print(json.dumps({"model": last.model, "folder": last.folder, "seconds": round(last.seconds, 2)}))
    return 0


def _need(args: argparse.Namespace, n: int) -> list[str]:
    from rp_eval.errors import RpEvalError

    if len(args.items) < n:
        raise RpEvalError(f"merge {args.action} needs {n if n > 1 else 'a'} {'models' if n > 1 else 'recipe'}")
    return args.items


def _bar():
    from tqdm import tqdm

    bar = tqdm(total=1, desc="merging", unit="task", file=sys.stderr)

    def report(p) -> None:
        bar.total = max(p.total, 1)
        bar.set_postfix_str(p.stage)
        bar.update(p.done - bar.n)
        if p.stage == "done":
            bar.close()

    return report


def add_parser(sub) -> None:
    m = sub.add_parser("merge", help="merge recipes (mergekit YAML): check, validate, run")
    m.add_argument("action", choices=["methods", "list", "show", "check", "validate", "run"])
    m.add_argument("items", nargs="*", help="check: models (names, folders, ids); others: a recipe file or name")
    m.add_argument("--name", default="", help="run: the merged model's registry name (default: the recipe's)")
    m.add_argument("--no-shapes", action="store_true", help="validate: skip the configs of the models")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_merge)
