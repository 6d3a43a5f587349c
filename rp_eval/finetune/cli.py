"""`rp-eval finetune run|preview|runs|resume|merge`: the same functions as the Fine-tune tab."""

from __future__ import annotations

import argparse
import json
import sys

from rp_eval.finetune.config import FinetuneSettings

# command-line flag → FinetuneSettings field, for the settings a person usually changes
_FLAGS = {
    "epochs": float,
    "max_steps": int,
    "learning_rate": float,
    "batch_size": int,
    "grad_accum": int,
    "lora_r": int,
    "lora_alpha": int,
    "lora_dropout": float,
    "max_length": int,
    "eval_fraction": float,
    "seed": int,
    "save_steps": int,
    "logging_steps": int,
    "stop_check_prompts": int,
}


def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="LoRA / QLoRA fine-tuning that learns to stop")
    p.add_argument("action", choices=["run", "preview", "runs", "resume", "merge"])
    p.add_argument("run_id", nargs="?", type=int, help="resume: the run to continue")
    p.add_argument("--base", default="", help="registered base model (run, preview)")
    p.add_argument("--data", default="", help="JSONL file, saved datasets folder or hub id; default prompts/finetune")
    p.add_argument("--adapter-name", default="", help="run: the new adapter's name; merge: the adapter to merge")
    p.add_argument("--target-modules", default="", help="comma-separated; default: per architecture")
    p.add_argument("--qlora", action="store_true", help="4-bit base through bitsandbytes (CUDA GPU only)")
    p.add_argument("--gradient-checkpointing", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--no-gradient-checkpointing", action="store_true", help="the same as --gradient-checkpointing off")
    p.add_argument("--merge-full", action="store_true", help="also merge the adapter into a full model (registered)")
    p.add_argument("--overflow", choices=["truncate", "drop"], default="truncate")
    p.add_argument("-n", type=int, default=2, help="preview: how many examples")
    for name, kind in _FLAGS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_finetune)


def _settings(args: argparse.Namespace) -> FinetuneSettings:
    values = {k: getattr(args, k) for k in _FLAGS if getattr(args, k) is not None}
    if args.base and "learning_rate" not in values:  # a tiny demo model's own learning rate, as the tab sets it
        from rp_eval.models import demo

        values.update({k: v for k, v in demo.suggested_finetune(args.base).items() if k == "learning_rate"})
    if args.target_modules:
        values["target_modules"] = tuple(m.strip() for m in args.target_modules.split(",") if m.strip())
    return FinetuneSettings(
        base_model=args.base,
        data=args.data,
        adapter_name=args.adapter_name,
        qlora=args.qlora,
        gradient_checkpointing="off" if args.no_gradient_checkpointing else args.gradient_checkpointing,
        merge_full=args.merge_full,
        overflow=args.overflow,
        **values,
    )


def _finetune(args: argparse.Namespace) -> int:
    from rp_eval.finetune import job
    from rp_eval.finetune.data import DataError

    if args.action in ("run", "preview") and not args.base:
        raise DataError(f"finetune {args.action} needs --base (a registered model)")
    if args.action == "preview":
        from rp_eval.finetune.preview import preview

        pv = preview(args.base, args.data, args.n, args.max_length or 1024)
        if args.json:
            print(json.dumps({k: v for k, v in pv.__dict__.items() if k != "html"}, ensure_ascii=False))
        else:
            print(pv.end_marker)
            print(pv.counts)
            for text in pv.texts:
                print("-" * 40)
                print(text)
        return 0 if pv.ok else 2
    if args.action == "runs":
        from rp_eval.store import finetune as runs
        from rp_eval.store import get_store

        job.mark_interrupted()
        rows = runs.list_runs(get_store())
        if args.json:
            keys = ("id", "base_model", "adapter", "status", "metrics")
            print(json.dumps([{k: getattr(r, k) for k in keys} for r in rows], ensure_ascii=False, default=str))
        for r in [] if args.json else rows:
            print(f"{r.id:5} {r.status:10} {r.base_model:24} {r.adapter}")
        return 0
    if args.action == "merge":
        from rp_eval.finetune.merge_full import merge_full

        if not args.adapter_name:
            raise DataError("finetune merge needs --adapter-name (a registered adapter)")
        name = merge_full(args.adapter_name)
        print(json.dumps({"merged": name}) if args.json else f"full model registered as '{name}'")
        return 0
    if args.action == "resume":
        if args.run_id is None:
            raise DataError("finetune resume needs the run id")
        run_id = job.resume(args.run_id)
    else:
        run_id = job.start(_settings(args))
    return _watch(run_id, args.json)


def _watch(run_id: int, as_json: bool) -> int:
    from rp_eval.finetune import job

    shown = 0
    last = None
    try:
        for last in job.follow(run_id):
            for line in last.log[shown:]:
                print(line, file=sys.stderr)
            shown = len(last.log)
    except KeyboardInterrupt:
        job.cancel(run_id)
        print("cancelling: saving a checkpoint…", file=sys.stderr)
        last = job.wait(run_id)
    out = {"run": run_id, "status": last.status, "adapter": last.adapter, "metrics": last.metrics}
    print(json.dumps(out, ensure_ascii=False) if as_json else f"run {run_id}: {last.status} {last.adapter}")
    return 0 if last.status == "done" else 2
