"""`python -m rp_eval` end to end, in a subprocess, as a script would call it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RP_EVAL_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rp_eval", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


def test_generate_prints_one_json_object(tiny_llama, tmp_path):
    out = cli(
        "generate",
        "--model",
        str(tiny_llama),
        "--message",
        "こんにちは",
        "--system",
        "あなたは猫です。",
        "--max-new-tokens",
        "6",
        "--temperature",
        "0",
        "--json",
        home=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert {"text", "raw_text", "finish_reason", "new_tokens", "seconds"} <= result.keys()
    assert result["finish_reason"] in ("eos", "stop_string", "length", "length_trimmed")
    assert result["new_tokens"] in range(1, 7) and result["prompt_format"] == "template"
    again = cli(
        "generate",
        "--model",
        str(tiny_llama),
        "--message",
        "こんにちは",
        "--system",
        "あなたは猫です。",
        "--max-new-tokens",
        "6",
        "--temperature",
        "0",
        "--json",
        home=tmp_path,
    )
    assert json.loads(again.stdout)["raw_text"] == result["raw_text"]  # greedy is deterministic


def test_models_add_list_remove(tiny_llama, tmp_path):
    assert cli("models", "add", str(tiny_llama), "--name", "tiny", home=tmp_path).returncode == 0
    listed = json.loads(cli("models", "list", "--json", home=tmp_path).stdout)
    assert [m["name"] for m in listed] == ["tiny"] and listed[0]["architecture"] == "LlamaForCausalLM"
    named = cli("generate", "--model", "tiny", "--message", "やあ", "--max-new-tokens", "3", "--json", home=tmp_path)
    assert json.loads(named.stdout)["model"] == "tiny"
    assert cli("models", "remove", "tiny", home=tmp_path).returncode == 0
    assert json.loads(cli("models", "list", "--json", home=tmp_path).stdout) == []


def test_errors_go_to_stderr_with_a_nonzero_exit(tiny_llama, tmp_path):
    cases = [
        (["generate", "--model", str(tmp_path / "nope"), "--message", "x"], "does not exist"),
        (["generate", "--model", "owner/not-here", "--message", "x"], "HF_HUB_OFFLINE"),
        (["generate", "--model", str(tiny_llama), "--message", " "], "message is empty"),
        (["generate", "--model", str(tiny_llama), "--message", "x", "--max-new-tokens", "0"], "max_new_tokens"),
        (["models", "remove", "ghost"], "no registered model named 'ghost'"),
        (["models", "add"], "needs a model"),
    ]
    for args, message in cases:
        out = cli(*args, home=tmp_path)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and out.stdout == ""


def cli_input(stdin: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RP_EVAL_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rp_eval", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_terminal_chat_streams_replies_with_their_finish_reason(tiny_llama, tmp_path):
    assert cli("models", "add", str(tiny_llama), "--name", "tiny", home=tmp_path).returncode == 0
    out = cli_input(
        "こんにちは\n/raw\n/undo\nおはよう\n/quit\n",
        "chat",
        "--model",
        "tiny",
        "--persona",
        "samurai",
        "--max-new-tokens",
        "8",
        "--temperature",
        "0",
        home=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "ござる" in lines[0]  # the persona's greeting opens the chat
    reasons = [x for x in lines if x.strip().startswith("[") and "tokens" in x]
    assert len(reasons) == 2  # two replies, each with why it ended
    assert any(x.startswith("[raw tiny]") for x in lines) and "(undone)" in lines
    bad = cli_input("", "chat", "--model", "tiny", "--persona", "nobody", home=tmp_path)
    assert bad.returncode == 2 and "unknown persona 'nobody'" in bad.stderr


def test_serve_help_lists_the_settings(tmp_path):
    out = cli("serve", "--help", home=tmp_path)
    assert out.returncode == 0 and "--auth" in out.stdout
