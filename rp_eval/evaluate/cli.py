"""`rp-eval eval run|items|calibrate|meta`: the evaluation from the command line, the same functions as the tab."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="run the role-play evaluation task; calibrate its score against the ratings")
    p.add_argument("action", choices=["run", "items", "calibrate", "meta"])
    p.add_argument("--models", default="", help="comma-separated registered names (run)")
    p.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    p.add_argument("--limit", type=int, default=None, help="a seeded subset of this many items")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.7, help="0 means greedy")
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument(
        "--weights", default=None, help="weights YAML path or workspace name (default prompts/eval/weights.yaml)"
    )
    p.add_argument("--judge", default=None, help="a registered model as LLM judge (off by default)")
    p.add_argument("--reference", default=None, help="a registered model for the reply likelihood (off by default)")
    p.add_argument("--csv", default=None, help="write every reply with its scores here")
    p.add_argument("--report", default=None, help="write the one-file HTML report here")
    p.add_argument("--ridge", type=float, default=1.0, help="calibrate: ridge strength")
    p.add_argument("--save-as", default="calibrated", help="calibrate: name of the weights written to the workspace")
    p.add_argument("--pairs", default=None, help="meta: a pairs JSONL file (default prompts/eval/meta/pairs.jsonl)")
    p.add_argument("--rounds", type=int, default=1000, help="meta: bootstrap rounds of the 95%% intervals")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    return {"run": _run, "items": _items, "calibrate": _calibrate, "meta": _meta}[args.action](args)


def _meta(args: argparse.Namespace) -> int:
    from rp_eval.evaluate.meta import meta_evaluate

    result = meta_evaluate(args.pairs, args.weights, args.judge, rounds=args.rounds, seed=args.seed)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, default=str))
        return 0
    import pandas as pd

    print(f"{result.pairs} pairs from {result.source}; weights '{result.weights}'")
    print("share of pairs where each score prefers the better reply (ties count half); lo/hi: bootstrap 95%")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_rows", 200):
        print(result.wide().to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}"))
    empty = [c for c, n in result.categories.items() if n == 0]
    if empty:
        print(f"no pairs in: {', '.join(empty)}")
    if result.judge:
        j = result.judge
        print(f"judge {j['model']}: position bias {j['position_bias']:+.3f} (0 none, +1 always the second shown), "
              f"same winner in both orders {j['consistency']:.3f}")  # fmt: skip
    return 0


def _items(args: argparse.Namespace) -> int:
    from rp_eval.evaluate.task import load_task

    task = load_task()
    items = task.select(args.split, args.limit, args.seed)
    summary = {
        "task_version": task.version,
        "split": args.split,
        "items": len(items),
        "multi_turn": sum(i.multi_turn for i in items),
        "personas": sorted({i.persona for i in items}),
    }
    print(json.dumps(summary, ensure_ascii=False) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rp_eval.chat.generate import GenerationSettings
    from rp_eval.errors import RpEvalError
    from rp_eval.evaluate import report
    from rp_eval.evaluate.runner import EvalConfig, Progress, run_evaluation
    from rp_eval.store import get_store

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise RpEvalError("eval run needs --models NAME[,NAME...] (see `rp-eval models list`)")
    config = EvalConfig(
        models=models,
        split=args.split,
        limit=args.limit,
        seed=args.seed,
        batch_size=args.batch_size,
        generation=GenerationSettings(
            max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p
        ),
        weights=args.weights,
        judge_model=args.judge,
        reference_model=args.reference,
    )
    bar = None
    for event in run_evaluation(config):
        if isinstance(event, Progress):
            bar = bar or tqdm(total=event.total, desc="evaluating", unit="reply", file=sys.stderr)
            bar.update(event.done - bar.n)
            bar.set_postfix_str(event.message)
        else:
            result = event
    if bar:
        bar.close()
    human = report.human_table(get_store())
    table = report.model_table(result, human)
    if args.csv:
        report.write_csv(result, args.csv)
    if args.report:
        report.write_report(result, args.report, human)
    for name, why in result.failed.items():
        print(f"error: {name} failed: {why}", file=sys.stderr)
    if args.json:
        out = {"task_version": result.task_version, "models": table.to_dict("records"), "failed": result.failed}
        print(json.dumps(out, ensure_ascii=False, default=str))
    else:
        print(table.to_string(index=False))
    return 1 if result.failed else 0


def _calibrate(args: argparse.Namespace) -> int:
    from rp_eval.evaluate.calibrate import calibrate_store
    from rp_eval.store import get_store

    cal, path = calibrate_store(get_store(), args.weights, args.ridge, args.seed, args.save_as)
    out = {
        "replies": cal.n,
        "spearman_before": cal.before,
        "spearman_after": cal.after,
        "spearman_after_cv": cal.after_cv,
        "meta_accuracy_before": cal.meta_before,
        "meta_accuracy_after": cal.meta_after,
    }
    out["weights"] = str(path)
    if args.json:
        print(json.dumps({**out, "per_metric": cal.per_reply.to_dict("records")}, ensure_ascii=False, default=str))
    else:
        print(cal.per_reply.to_string(index=False))
        print("\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0
