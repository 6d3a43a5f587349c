"""`python -m rp_eval --help` answers at once: no feature module (pandas, torch, gradio, transformers) is imported
to print it; a subcommand's own help still loads that subcommand in full."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("torch", "pandas", "gradio", "transformers", "scipy", "sqlalchemy")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_help_imports_nothing_heavy_and_lists_every_command():
    code = (
        "import sys, contextlib, io\n"
        "from rp_eval.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print(out.getvalue())\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first == "[]", first  # none of the heavy packages
    text = "\n".join(rest)
    for command in ("models", "generate", "chat", "serve", "users", "ratings", "finetune", "eval", "merge", "evolve"):
        assert command in text
    assert "human ratings: leaderboard and export" in text


def test_a_subcommand_still_gets_its_full_options():
    result = subprocess.run([sys.executable, "-m", "rp_eval", "eval", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0 and "--max-new-tokens" in result.stdout and "--judge" in result.stdout
    result = subprocess.run([sys.executable, "-m", "rp_eval", "evolve", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert "--recipe-dir" in result.stdout
