"""Fixtures of the evaluation tests: the real task and personas, a small task folder, a registered tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_eval.chat.personas import load_personas
from rp_eval.evaluate.task import Task, load_task


@pytest.fixture(scope="session")
def personas():
    return load_personas()


@pytest.fixture(scope="session")
def task(personas) -> Task:
    return load_task(personas=personas)


def write_items(folder: Path, items: list[dict], name: str = "a.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n", encoding="utf-8")
    return folder


def item(n: int, persona: str = "samurai", split: str = "dev", turns: list[str] | None = None) -> dict:
    turns = turns or ["こんにちは。"]
    return {
        "id": f"t-{n:03d}",
        "persona": persona,
        "split": split,
        "situation": "テスト",
        "turns": [{"role": "user" if k % 2 == 0 else "assistant", "content": t} for k, t in enumerate(turns)],
    }


@pytest.fixture
def tiny_registered(workspace, tiny_llama) -> str:
    """The tiny Llama model registered in a fresh workspace; its name."""
    from rp_eval.models import registry

    return registry.add_model(str(tiny_llama), "tiny").name
