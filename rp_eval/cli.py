"""`python -m rp_eval` (or `rp-eval`): one subcommand per capability, calling the same functions as the tabs.

Errors go to stderr with exit code 2; results to stdout (one JSON object with --json).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from rp_eval.chat.formats import FORMATS


def _models(args: argparse.Namespace) -> int:
    from rp_eval.models import registry

    if args.action == "list":
        rows = registry.list_models()
        if args.json:
            print(json.dumps([_row_dict(r) for r in rows], ensure_ascii=False, indent=1))
        else:
            for r in rows:
                print(f"{r.name:32} {r.kind:8} {r.architecture:24} {r.source}")
            if not rows:
                print("no models registered (the app registers the demo models at its first start)")
    elif args.action == "add":
        row = registry.add_model(
            args.source, args.name or "", prompt_format=args.prompt_format, trust_remote_code=args.trust_remote_code
        )
        print(json.dumps(_row_dict(row), ensure_ascii=False) if args.json else f"registered {row.name}")
    elif args.action == "remove":
        registry.remove_model(args.source, delete_files=args.delete_files)
        print(f"removed {args.source}")
    elif args.action == "demo":
        from rp_eval.models.demo import build_demo_models

        names = build_demo_models(_terminal_progress())
        print("demo models ready: " + ", ".join(names))
    return 0


def _row_dict(row) -> dict:
    return {
        k: getattr(row, k)
        for k in (
            "name",
            "kind",
            "source",
            "parents",
            "architecture",
            "model_type",
            "parameters",
            "size_bytes",
            "prompt_format",
            "made_by",
            "notes",
        )
    }


def _generate(args: argparse.Namespace) -> int:
    from rp_eval.chat.generate import GenerationSettings, generate
    from rp_eval.models import registry
    from rp_eval.models.loading import model_cache, transient_row

    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed
    )
    store_row = registry.get_store().get_model(args.model)
    row = store_row or transient_row(args.model, args.prompt_format)
    if store_row is None and args.prompt_format != "auto":
        row.prompt_format = args.prompt_format
    loaded = model_cache().get(row)
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.message}
    ]
    result = generate(loaded.model, loaded.tokenizer, loaded.format, messages, settings)
    if args.json:
        out = result.to_dict()
        out.pop("prompt")
        out["model"] = row.name
        out["prompt_format"] = loaded.format.name
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(result.text)
        print(f"[{result.finish_reason}, {result.new_tokens} tokens, {result.seconds:.2f} s]", file=sys.stderr)
    return 0


def _users(args: argparse.Namespace) -> int:
    from rp_eval import auth

    if args.action == "list":
        for user in auth.load_users(args.file).values():
            print(f"{user.name:24} {user.role}")
        return 0
    if not args.name:
        raise auth.AuthError(f"users {args.action} needs a name")
    if args.action == "remove":
        auth.remove_user(args.file, args.name)
        print(f"removed {args.name}")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass

        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise auth.AuthError("the two passwords differ")
    auth.add_user(args.file, args.name, password, args.role, replace=args.replace)
    print(f"{auth.canonical(args.name)} ({args.role}) written to {args.file}")
    return 0


def _chat(args: argparse.Namespace) -> int:
    """A chat in the terminal: the persona greets, each line you type gets a streamed reply and why it ended.
    Lines starting with / are commands: /undo, /raw (the last reply as the model wrote it), /quit."""
    from rp_eval.chat import session
    from rp_eval.chat.generate import GenerationSettings
    from rp_eval.store import get_store

    store = get_store()
    personas = session.personas(store)
    if args.persona not in personas:
        raise session.ChatError(f"unknown persona '{args.persona}'; known: {', '.join(sorted(personas))}")
    persona = personas[args.persona]
    models = [args.model] + ([args.model2] if args.model2 else [])
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed
    )
    conv = session.start(store, persona, models, user=args.user)
    print(f"{persona.name}: {persona.greeting(args.user)}", flush=True)
    last = []
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if line == "/quit":
            break
        if line == "/undo":
            session.undo(store, conv)
            print("(undone)", flush=True)
            continue
        if line == "/raw":
            for r in last:
                print(f"[raw {r.model}] {r.result.raw_text if r.result else r.text}", flush=True)
            continue
        single = len(models) == 1
        printed = ""
        if single:
            print(f"{persona.name}: ", end="", flush=True)
        for replies in session.reply(store, conv, line, settings):
            text = replies[0].text
            if single and text.startswith(printed):  # stream; a reply trimmed at the cap is printed again below
                print(text[len(printed) :], end="", flush=True)
                printed = text
        last = replies
        for r in replies:
            if not single or r.text != printed:
                print(f"\n{persona.name} [{r.model}]: {r.text}", end="")
            print(f"\n  [{r.error or session.finish_words(r.result)}]", flush=True)
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.explain:
        return _explain(args)
    from rp_eval.server import serve

    return serve(args)


def _explain(args: argparse.Namespace) -> int:
    """The KV cache each registered model would get (read from its config, no weights loaded)."""
    import torch
    from transformers import AutoConfig

    from rp_eval.chat.blocks import explain
    from rp_eval.models import registry
    from rp_eval.models.loading import _expected_bytes, pick_device

    if args.budget_gb is not None and not 0 < args.budget_gb < 10_000:
        print(f"error: --budget-gb must be a number of gigabytes above 0 (got {args.budget_gb})", file=sys.stderr)
        return 2
    from rp_eval.chat.engine import default_layout

    for line in registry.register_configured():
        print(f"warning: {line}")
    device, dtype = pick_device()
    layout = default_layout(torch.device(device))  # a bad kv_layout setting: ConfigError, exit 2
    print(f"the static engine keeps its KV cache as {layout} on {device} (the kv_layout setting chooses)")
    size = torch.tensor([], dtype=dtype).element_size()
    free = torch.cuda.mem_get_info()[0] if device == "cuda" else None
    rows = registry.list_models()
    if not rows:
        print("no models registered yet (rp-eval models add SOURCE)")
    for row in rows:
        source = registry.get_model(row.parents[0]).source if row.kind == "adapter" and row.parents else row.source
        try:
            config = AutoConfig.from_pretrained(source)
        except (OSError, ValueError) as err:
            print(f"{row.name}: its config can not be read ({str(err).splitlines()[0][:200]})")
            continue
        if args.budget_gb is not None:
            budget = int(args.budget_gb * 1e9)
        elif free is not None:  # as the engine plans after loading: 60% of what the weights leave free
            budget = int(max(0, free - _expected_bytes(row)) * 0.6)
        else:
            budget = 2 << 30
        print(f"{row.name} ({device}, {dtype}): {explain(config, size, budget)}")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from rp_eval.store.backup import backup

    print(backup(args.out))
    return 0


def _terminal_progress():
    from tqdm import tqdm

    bar = None

    def update(message: str, done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="building demo models", unit="step", file=sys.stderr)
        bar.set_postfix_str(message)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line; `argv` (default: this process's) says which feature command to load in full."""
    p = argparse.ArgumentParser(prog="rp-eval", description="Role-play chat models: register, chat, evaluate.")
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("models", help="the model registry")
    m.add_argument("action", choices=["list", "add", "remove", "demo"])
    m.add_argument("source", nargs="?", default="", help="hub id or folder (add), name (remove)")
    m.add_argument("--name", default="", help="registry name (add); default: the folder name or hub id")
    m.add_argument("--prompt-format", default="auto", choices=["auto", *FORMATS])
    m.add_argument("--trust-remote-code", action="store_true")
    m.add_argument("--delete-files", action="store_true", help="remove: also delete files rp_eval made")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_models)

    g = sub.add_parser("generate", help="one reply from a model, cut and trimmed as in the chat")
    g.add_argument("--model", required=True, help="registered name, hub id or folder")
    g.add_argument("--message", required=True)
    g.add_argument("--system", default="")
    g.add_argument("--max-new-tokens", type=int, default=128)
    g.add_argument("--temperature", type=float, default=0.7, help="0 means greedy")
    g.add_argument("--top-p", type=float, default=0.9)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--prompt-format", default="auto", choices=["auto", *FORMATS])
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=_generate)

    c = sub.add_parser("chat", help="chat in character in the terminal (/undo, /raw, /quit)")
    c.add_argument("--model", required=True, help="registered model name")
    c.add_argument("--model2", default="", help="a second model answering side by side")
    c.add_argument("--persona", default="samurai", help="persona id (prompts/personas/*.yaml or an imported card)")
    c.add_argument("--user", default="あなた", help="your name in the chat")
    c.add_argument("--max-new-tokens", type=int, default=128)
    c.add_argument("--temperature", type=float, default=0.7)
    c.add_argument("--top-p", type=float, default=0.9)
    c.add_argument("--seed", type=int, default=None)
    c.set_defaults(func=_chat)

    s = sub.add_parser("serve", help="the app and the OpenAI-compatible API (same as python app.py)")
    from rp_eval.server import add_arguments

    add_arguments(s)
    s.add_argument("--explain", action="store_true", help="print each model's KV cache plan and exit")
    s.add_argument("--budget-gb", type=float, default=None, help="with --explain: the KV budget to plan for")
    s.set_defaults(func=_serve)

    u = sub.add_parser("users", help="logins for a lab server (python app.py --auth FILE)")
    u.add_argument("action", choices=["add", "remove", "list"])
    u.add_argument("name", nargs="?", default="")
    u.add_argument("--file", default="users.yaml")
    u.add_argument("--role", choices=["rater", "admin"], default="rater")
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u.add_argument("--replace", action="store_true", help="add: change an existing user's password or role")
    u.set_defaults(func=_users)

    b = sub.add_parser("backup", help="copy the SQLite store safely, also while the app runs (SQLite backup API)")
    b.add_argument("out", help="the file to write, or a folder for a dated copy")
    b.set_defaults(func=_backup)

    wanted = _command(sys.argv[1:] if argv is None else argv)
    for command, (module, help_text) in FEATURE_COMMANDS.items():
        if command == wanted:  # only the command being run imports its module (pandas, torch, ...)
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(command, help=help_text, add_help=False)
    return p


def _command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


# One line per feature: its subcommand, the module with `add_parser(subparsers)` that adds it, and the line
# `--help` shows (the module is imported only when its command runs, so `--help` answers at once); each handler
# takes the parsed arguments and returns an exit code, and raises RpEvalError for a person's mistakes.
FEATURE_COMMANDS: dict[str, tuple[str, str]] = {
    "ratings": ("rp_eval.ratings.cli", "human ratings: leaderboard and export"),
    "finetune": ("rp_eval.finetune.cli", "LoRA / QLoRA fine-tuning that learns to stop"),
    "eval": ("rp_eval.evaluate.cli", "run the role-play evaluation task; calibrate its score against the ratings"),
    "merge": ("rp_eval.merge.cli", "merge recipes (mergekit YAML): check, validate, run"),
    "evolve": ("rp_eval.evolve.cli", "evolutionary merge: CMA-ES over a genome, role-play fitness"),
    "report": ("rp_eval.report", "every model: lineage, automatic evaluation and human ratings, from the store"),
}


def main(argv: list[str] | None = None) -> int:
    args = parser(argv).parse_args(argv)
    if args.command == "models" and args.action in ("add", "remove") and not args.source:
        print(f"error: models {args.action} needs a model (hub id or folder for add, name for remove)", file=sys.stderr)
        return 2
    from pydantic import ValidationError

    from rp_eval.errors import RpEvalError

    try:
        return args.func(args)
    except RpEvalError as err:
        print(f"error: {err}", file=sys.stderr)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        print(f"error: bad setting: {problems}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
