"""Evolution writes into the workspace only (genomes, exported recipes unless the user names a folder); the tab
shows fitness rounded, whole generations on its axis, and Stop on a run that is not running says so."""

from __future__ import annotations

import subprocess

import pytest

from rp_eval import settings
from rp_eval.evolve import genome as genomes
from rp_eval.evolve.search import SearchSettings, evolve, export_best, recipe_path
from rp_eval.store import evolve as db
from rp_eval.store import get_store
from tests.conftest import ROOT
from tests.evolve.test_search import FAST, _family_genome


def _checkout_changes() -> str:
    """What `git status` shows of the checkout's merges/ (recipes, genomes) and prompts/: nothing is wanted."""
    out = subprocess.run(["git", "status", "--porcelain", "--", "merges", "prompts"], cwd=ROOT, capture_output=True)
    return out.stdout.decode()


@pytest.fixture
def searched(tiny_family, workspace):
    before = _checkout_changes()
    list(evolve(_family_genome(tiny_family), SearchSettings(**FAST), "family"))
    return before


def test_genomes_and_exported_recipes_land_in_the_workspace(searched, workspace, tmp_path, monkeypatch):
    monkeypatch.delenv("RP_EVAL_RECIPES", raising=False)  # as a user runs it: nothing points elsewhere
    path = genomes.save_genome(genomes.Genome(name="g1", models=["b"], base_model="a", method="slerp"))
    assert path == settings.home() / "evolve" / "genomes" / "g1.yaml" and genomes.load_genome("g1").name == "g1"

    steps = list(export_best("family", "family-best"))
    assert steps[-1].stage == "done"
    assert (workspace / "merges" / "family-best.yaml").read_text().startswith(("merge_method", "models", "base"))
    assert recipe_path("family-best") == workspace / "merges" / "family-best.yaml"

    asked = tmp_path / "my-recipes"
    list(export_best("family", "family-best-2", asked))
    assert (asked / "family-best-2.yaml").is_file() and not (workspace / "merges" / "family-best-2.yaml").exists()
    assert _checkout_changes() == searched  # nothing new in the source checkout


def test_the_tab_rounds_fitness_counts_whole_generations_and_says_a_finished_run_is_not_running(searched):
    from rp_eval.ui import evolve_tab

    table = evolve_tab.candidates_frame("family")
    assert all(v == round(v, 4) for v in table["fitness"])
    run = db.get_run(get_store(), "family")
    history = [(0, 0.8488374999999999, 0.80000000001), (1, 0.9, 0.85)]
    frame = evolve_tab._history_frame(history)
    assert list(frame["generation"].unique()) == [1, 2] and 0.8488 in list(frame["fitness"])
    figure = evolve_tab._history_figure(history)
    ticks = [t for t in figure.axes[0].get_xticks() if 1 <= t <= 2]
    assert ticks and all(float(t).is_integer() for t in ticks)

    said = evolve_tab.stop("family")
    assert run.status == "done" and "not running" in said and "done" in said
    assert "Stopping" not in said and "no evolve run" in evolve_tab.stop("nobody")


def test_a_bad_number_in_the_tab_is_refused_by_name(tiny_family, workspace):
    from rp_eval.ui import evolve_tab

    base, a, b = (str(tiny_family[k]) for k in ("base", "a", "b"))
    out = list(evolve_tab.start([a, b], base, "dare_ties", 2, False, "bad", 1e30, 8, 0.3, 0, 2, 6))
    assert len(out) == 1 and "Population** must be at most 10000 (got 1e+30)" in out[0][0]
    assert db.get_run(get_store(), "bad") is None and not (settings.home() / "evolve" / "genomes" / "bad.yaml").exists()
