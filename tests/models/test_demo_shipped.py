"""The demo models shipped in prompts/demo/models: built from the current recipe (its fingerprint), intact (the
manifest's hashes), small, installed as float32 in seconds, and reproducible: a rebuild from the corpus still
shows the behaviours tests/test_demo.py asserts of the shipped build (`-m slow`: minutes on 2 CPU cores)."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from rp_eval.models import demo, demo_ship
from tests.conftest import use_workspace
from tests.test_demo import check_demo_behaviour


def test_the_shipped_build_is_of_the_current_recipe_and_intact():
    folder = demo_ship.SHIPPED
    assert (folder / "READY").read_text().strip() == demo._fingerprint(), (
        "the corpus or the demo recipe changed: rebuild the shipped models with python -m rp_eval.models.demo_ship"
    )
    assert demo_ship.shipped_ready()
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert set(manifest) == {spec.name for spec in demo.DEMOS}
    total = 0
    for name, files in manifest.items():
        for file, digest in files.items():
            data = (folder / name / file).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{name}/{file} differs from its manifest"
            assert len(data) < 4_000_000, f"{name}/{file} is {len(data)} bytes: keep each shipped file small"
            total += len(data)
    assert total < 10_000_000, total


def test_a_stale_shipped_build_is_not_installed(tmp_path, monkeypatch):
    stale = tmp_path / "shipped"
    stale.mkdir()
    (stale / "READY").write_text("0000000000000000")
    assert not demo_ship.shipped_ready(stale)
    assert not demo_ship.shipped_ready(tmp_path / "missing")


def test_install_writes_float32_copies_of_the_shipped_weights(workspace):
    start = time.perf_counter()
    demo.build_demo_models()
    seconds = time.perf_counter() - start
    assert demo.demos_ready() and demo.build_info()["shipped"] is True
    for spec in demo.DEMOS:
        shipped = load_file(demo_ship.SHIPPED / spec.name / demo_ship.WEIGHTS)
        installed = load_file(demo.demo_dir() / spec.name / demo_ship.WEIGHTS)
        assert set(shipped) == set(installed)
        for key, value in installed.items():
            assert value.dtype == np.float32 and np.array_equal(value, shipped[key].astype(np.float32)), key
    assert seconds < 20, seconds  # a copy, not a training run


@pytest.mark.slow
def test_a_rebuild_from_the_corpus_shows_the_shipped_behaviours(tmp_path, monkeypatch):
    monkeypatch.setenv("RP_EVAL_DEMO_TRAIN", "1")
    use_workspace(tmp_path / "workspace", monkeypatch)
    demo.build_demo_models()
    assert "shipped" not in demo.build_info()
    check_demo_behaviour()
