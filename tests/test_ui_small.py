"""Smaller fixes of the page, each checked where it lives: the Merge preset box, the Leaderboard filled when its tab
opens, the Rate tab's missing-score message in the page's words (both languages), the rater's name kept in the
browser, and ZeroGPU's decorator on every handler that runs a model."""

from __future__ import annotations

import importlib
import sys
import types

import pytest


def _blocks(app) -> dict:
    return {b._id: b for b in app.blocks.values()}


def _by_elem(app, elem_id: str):
    return next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def _triggered(app, block, event: str) -> list[dict]:
    return [d for d in app.config["dependencies"] if (block._id, event) in [tuple(t) for t in d["targets"]]]


def test_the_merge_preset_box_is_empty_with_the_form_and_choosing_loads(workspace):
    from rp_eval.ui import build_app

    app = build_app(demo_models=False, only={"merge_tab"})
    files = _by_elem(app, "merge-recipe-file")
    assert files.value is None and files.choices  # presets offered, none shown as chosen
    [load] = _triggered(app, files, "select")
    assert _by_elem(app, "merge-yaml")._id in load["outputs"]


def test_the_leaderboard_fills_when_its_tab_opens(workspace):
    import gradio as gr

    from rp_eval.ui import build_app

    app = build_app(demo_models=False, only={"leaderboard_tab"})
    tab = next(b for b in app.blocks.values() if isinstance(b, gr.Tab) and b.id == "leaderboard_tab")
    [fill] = _triggered(app, tab, "select")
    assert _by_elem(app, "lb-summary")._id in fill["outputs"] and _by_elem(app, "lb-table")._id in fill["outputs"]


def test_the_raters_name_is_kept_in_the_browser(workspace):
    from rp_eval.ui import build_app, rate_tab

    app = build_app(demo_models=False, only={"rate_tab"})
    rater = _by_elem(app, "rate-rater")
    loads = [d for d in app.config["dependencies"] if rater._id in d["outputs"] and d["targets"][0][1] == "load"]
    assert loads and f"localStorage.getItem('{rate_tab.RATER_KEY}')" in loads[0]["js"]
    [save] = _triggered(app, rater, "change")
    assert f"localStorage.setItem('{rate_tab.RATER_KEY}'" in save["js"]


@pytest.mark.parametrize(
    ("lang", "said", "unsaid"),
    [("en", "Give a score from 1 to 5 for: Natural Japanese, Turn length.", "naturalness"),
     ("ja", "次の項目に 1〜5 の点をつけてください：日本語の自然さ、ターンの長さ。", "length_fit")],
)  # fmt: skip
def test_missing_scores_are_named_as_the_page_names_them(workspace, lang, said, unsaid):
    from gradio.context import LocalContext

    from rp_eval.ui import rate_tab

    request = types.SimpleNamespace(cookies={"rp_lang": lang}, headers={})
    token = LocalContext.request.set(request)
    try:
        item, message = rate_tab.save_scores(None, "some-item", "rater", "", "", None, 4, None, 3)
    finally:
        LocalContext.request.reset(token)
    assert item == "some-item" and said in message and unsaid not in message


def test_every_handler_that_runs_a_model_borrows_a_zerogpu(monkeypatch):
    marked = []

    def gpu(fn=None, **options):
        def wrap(f):
            marked.append(f.__qualname__)
            return f

        return wrap(fn) if fn is not None else wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    names = ["rp_eval.ui.zerogpu", "rp_eval.ui.rate_tab", "rp_eval.ui.evaluate_tab", "rp_eval.ui.evolve_tab",
             "rp_eval.ui.chat_tab", "rp_eval.ui.meta_section"]  # fmt: skip
    try:
        for name in names:
            importlib.reload(importlib.import_module(name))
        assert {"new_pair", "continue_pair", "new_single", "_run", "start", "resume", "respond", "run_meta"} <= set(
            marked
        )
    finally:
        monkeypatch.delitem(sys.modules, "spaces")
        for name in names:
            importlib.reload(importlib.import_module(name))


def test_empty_tables_show_no_placeholder_headers(workspace):
    """A table with nothing in it yet shows no "1 2 3" column headers (Gradio's default for a table built empty)."""
    import gradio as gr

    from rp_eval.ui import build_app

    app = build_app(demo_models=False)
    tables = [b for b in app.blocks.values() if isinstance(b, gr.Dataframe)]
    assert len(tables) >= 10
    numbered = [b.elem_id or b.label for b in tables if (b.value or {}).get("headers") == ["1", "2", "3"]]
    assert numbered == []
