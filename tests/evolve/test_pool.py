"""Candidate evaluation through a Ray actor pool gives the same run as in-process evaluation."""

from __future__ import annotations

import sys
import time

import pytest

from rp_eval.cli import main
from rp_eval.evolve.genome import Genome
from rp_eval.evolve.pool import PoolError, PoolSettings
from rp_eval.evolve.search import SearchSettings, evolve
from rp_eval.store import evolve as db
from rp_eval.store import get_store
from tests.conftest import free_port, use_workspace

FAST = dict(population=4, budget=8, dev_limit=2, max_new_tokens=6, test_limit=2, sigma0=0.3, seed=3)


def _stored(run: str) -> list:
    return db.candidates(get_store(), db.get_run(get_store(), run).id)


def test_a_pool_of_two_ray_actors_gives_the_in_process_run(demo_workspace, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9,<3'); CI installs it")
    use_workspace(demo_workspace, monkeypatch)
    # DARE-TIES in two layer groups: 4 genes, and a seeded random mask that each actor must draw the same way
    genome = Genome(
        models=["demo-llama-b"], base_model="demo-llama-a", method="dare_ties", layer_granularity=2, dtype="float32"
    )
    settings = SearchSettings(**FAST)
    local = list(evolve(genome, settings, "in-process"))

    # "local": a fresh instance even where a cluster was started on this machine before
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
    try:
        start = time.perf_counter()
        pooled = list(evolve(genome, settings, "pooled", pool=PoolSettings(actors=2)))
        seconds = time.perf_counter() - start
        assert ray.is_initialized()  # a pool leaves a Ray instance it did not start running
    finally:
        ray.shutdown()

    assert local[-1].done and pooled[-1].done and pooled[-1].evaluated == local[-1].evaluated == 8
    a, b = _stored("in-process"), _stored("pooled")
    assert len(a) == len(b) == 8 and all(c.status == "ok" for c in a + b)
    assert [(c.generation, c.index) for c in a] == [(c.generation, c.index) for c in b]
    assert [c.genotype for c in a] == [c.genotype for c in b] and len(a[0].genotype) == 4
    assert [c.fitness for c in a] == [c.fitness for c in b]
    assert [c.recipe for c in a] == [c.recipe for c in b]
    assert [c.test_fitness for c in a] == [c.test_fitness for c in b]
    assert sum(c.test_fitness is not None for c in b) == 1  # the test split was scored through the pool too
    assert len({c.fitness for c in a}) > 1  # candidates differ, so equal lists say something
    assert pooled[-1].history == local[-1].history
    assert seconds < 120, seconds


def test_a_pool_without_ray_is_refused_with_the_reason(workspace, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    genome = Genome(models=["demo-llama-b"], base_model="demo-llama-a", method="slerp")
    with pytest.raises(PoolError, match="needs Ray, which is not installed"):
        list(evolve(genome, SearchSettings(**FAST), "no-ray", pool=PoolSettings(address="auto")))
    assert db.get_run(get_store(), "no-ray") is None  # nothing half-made in the store


def test_the_cli_refuses_a_ray_address_where_no_cluster_listens(demo_workspace, monkeypatch, tmp_path, capsys):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9,<3'); CI installs it")
    use_workspace(demo_workspace, monkeypatch)
    genome = Genome(name="cli", models=["demo-llama-b"], base_model="demo-llama-a", method="slerp")
    path = tmp_path / "cli.yaml"
    path.write_text(genome.to_yaml())
    args = ["evolve", "run", "--genome", str(path), "--run", "cli", "--budget", "4", "--population", "2"]
    start = time.perf_counter()
    assert main([*args, "--ray-address", f"127.0.0.1:{free_port()}"]) == 2
    assert "no Ray cluster at '127.0.0.1:" in capsys.readouterr().err
    assert time.perf_counter() - start < 30  # said at once, not after Ray's minutes of retries
    assert db.get_run(get_store(), "cli") is None
