"""`rp-eval evolve ...`: run (or --resume) a CMA-ES merge search, list runs, show candidates, export the best."""

from __future__ import annotations

import argparse
import json
import sys


def _evolve(args: argparse.Namespace) -> int:
    from rp_eval.evolve import genome as genomes
    from rp_eval.evolve import search
    from rp_eval.evolve.pool import PoolSettings
    from rp_eval.store import evolve as db
    from rp_eval.store import get_store

    if args.action == "run":
        genome = genomes.load_genome(args.genome) if args.genome else None
        if genome is None and not args.resume:
            raise search.SearchError("evolve run needs --genome (a file or a name in the workspace's evolve/genomes/)")
        settings = search.SearchSettings(
            population=args.population,
            sigma0=args.sigma0,
            budget=args.budget,
            max_seconds=args.max_seconds,
            seed=args.seed,
            dev_limit=args.dev_limit,
            dev_seed=args.dev_seed,
            max_new_tokens=args.max_new_tokens,
            test_limit=args.test_limit,
            test_top=args.test_top,
            weights=args.weights,
            judge_model=args.judge,
            task=args.task,
        )
        if args.resume:  # the run's own settings; only the wall-time budget may change
            row = db.get_run(get_store(), args.run)
            if row is not None:
                settings = search.stored_settings(row, max_seconds=args.max_seconds)
        last = None
        pool = PoolSettings(address=args.ray_address, actors=args.ray_actors, workers=args.workers)
        for last in search.evolve(genome, settings, args.run, resume=args.resume, pool=pool):
            print(last.message, file=sys.stderr, flush=True)
        out = {"run": last.run, "evaluated": last.evaluated, "best": last.best, "done": last.done}
        print(json.dumps({**out, "fitness_meta": last.meta}, ensure_ascii=False))
    elif args.action == "list":
        search.mark_interrupted()
        for r in db.list_runs(get_store()):
            print(f"{r.name:32} {r.status:8} generations {r.generations:4} best {r.best_fitness}")
    elif args.action == "show":
        row = db.get_run(get_store(), args.run)
        if row is None:
            raise search.SearchError(f"no evolve run named '{args.run}'")
        from rp_eval.evolve import audit

        cands = db.candidates(get_store(), row.id)
        for c in cands:
            print(f"{c.generation:4} {c.index:3} {c.status:6} {c.fitness} test {c.test_fitness} {c.error}")
        print(audit.describe_meta(audit.load_meta(search.checkpoint_path(args.run).parent)))
        print(audit.best_table(cands).to_string(index=False))
    elif args.action == "export":
        from rp_eval.merge.run import MergeProgress

        last: MergeProgress | None = None
        name = args.name or f"{args.run}-best"
        for last in search.export_best(args.run, name, args.recipe_dir or None):
            print(last.message, file=sys.stderr)
        recipe = str(search.recipe_path(name, args.recipe_dir or None))
        print(json.dumps({"model": last.model, "folder": last.folder, "recipe": recipe}))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("evolve", help="evolutionary merge: CMA-ES over a genome, role-play fitness")
    p.add_argument("action", choices=["run", "list", "show", "export"])
    p.add_argument("--run", default="evolve", help="the run's name")
    p.add_argument("--genome", default="", help="run: a genome YAML file or a name in the workspace's evolve/genomes/")
    p.add_argument("--resume", action="store_true", help="run: continue a killed or stopped run from its checkpoint")
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--sigma0", type=float, default=0.2)
    p.add_argument("--budget", type=int, default=64, help="candidates in all")
    p.add_argument("--max-seconds", type=float, default=0, help="wall-time budget of this session (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dev-limit", type=int, default=32, help="dev items per candidate")
    p.add_argument("--dev-seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--test-top", type=int, default=1, help="best candidates scored on the test split")
    p.add_argument("--weights", default=None, help="run: the fitness's weights (YAML path or workspace name)")
    p.add_argument("--judge", default=None, help="run: a registered model as the judge metric (weight it)")
    p.add_argument(
        "--task", default=None, help="run: the task's items, a JSONL file or folder in the prompts/eval format"
    )
    p.add_argument("--name", default="", help="export: the merged model's name (and recipe file)")
    p.add_argument("--recipe-dir", default="", help="export: folder for NAME.yaml (default: the workspace's merges/)")
    p.add_argument(
        "--workers", type=int, default=0,
        help="run: worker processes on this machine, each with its own copy of the sources (default: one per GPU "
        "where there are several, else none: candidates are evaluated in this process)",
    )  # fmt: skip
    p.add_argument(
        "--ray-address", default="", help="run: evaluate through Ray actors on a running cluster (auto or HOST:PORT)"
    )
    p.add_argument(
        "--ray-actors", type=int, default=0,
        help="run: Ray actors (default one per GPU); without --ray-address a local Ray instance is started",
    )  # fmt: skip
    p.set_defaults(func=_evolve)
