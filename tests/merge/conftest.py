"""Tiny models for merging: three Llamas of one shape (seeds differ), a Mistral, and config-only folders of
the six seed models built from their published config.json shape fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_eval.models.registry import add_model
from tests.conftest import save_tiny

DATA = Path(__file__).resolve().parents[1] / "data"  # published config shapes and mergekit examples (see its README)
SEED = {
    "elyza": "elyza--ELYZA-japanese-Llama-2-7b-instruct",
    "beta": "stabilityai--japanese-stablelm-instruct-beta-7b",
    "gamma": "stabilityai--japanese-stablelm-instruct-gamma-7b",
    "shisa": "augmxnt--shisa-gamma-7b-v1",
    "llama3": "meta-llama--Meta-Llama-3-8B-Instruct",
    "gemma2": "google--gemma-2-9b-it",
}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge-tiny")
    return {
        "llama-a": save_tiny(root / "llama-a", tokenizer, seed=1),
        "llama-b": save_tiny(root / "llama-b", tokenizer, seed=2),
        "llama-c": save_tiny(root / "llama-c", tokenizer, seed=3),
        "mistral": save_tiny(root / "mistral", tokenizer, architecture="mistral", seed=4, intermediate_size=48),
    }


@pytest.fixture
def registered(workspace, tiny_models, tmp_path, monkeypatch) -> dict[str, Path]:
    """The tiny models registered by name in a fresh workspace; recipes saved into a temporary merges/."""
    monkeypatch.setenv("RP_EVAL_RECIPES", str(tmp_path / "merges"))
    for name, folder in tiny_models.items():
        add_model(str(folder), name)
    return tiny_models


@pytest.fixture(scope="session")
def seed_configs(tmp_path_factory) -> dict[str, Path]:
    """Config-only folders (no weights, no tokenizer) of the six seed models."""
    root = tmp_path_factory.mktemp("seed-configs")
    out = {}
    for key, stem in SEED.items():
        folder = root / stem
        folder.mkdir()
        config = json.loads((DATA / "model-configs" / f"{stem}.config.json").read_text())
        (folder / "config.json").write_text(json.dumps(config))
        out[key] = folder
    return out
