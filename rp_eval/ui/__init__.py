"""The Gradio app, one module per tab; this module only assembles them."""

from __future__ import annotations

import importlib

import gradio as gr

from rp_eval import settings
from rp_eval.ui import locale, models_tab
from rp_eval.ui.locale import t

# One line per tab after Models: (module under rp_eval.ui with a `build()` function, locale key of its label).
TABS: list[tuple[str, str]] = [
    ("chat_tab", "chat_tab"),
    ("rate_tab", "rate_tab"),
    ("leaderboard_tab", "leaderboard_tab"),
    ("evaluate_tab", "evaluate_tab"),
    ("merge_tab", "merge_tab"),
    ("evolve_tab", "evolve_tab"),
    ("finetune_tab", "finetune_tab"),
]

# Tabs that need a GPU-class machine; in demo mode (a CPU Space) they are not built at all, so their
# endpoints do not exist and a request to them is refused, and the tab says why.
HEAVY_TABS = {"finetune_tab", "merge_tab", "evolve_tab"}


# What a rater sees on a lab server with login (admins have every tab, on /admin).
RATER_TABS = {"chat_tab", "rate_tab", "leaderboard_tab"}


def build_app(
    startup_problems: list[str] | None = None, demo_models: bool = True, only: set[str] | None = None
) -> gr.Blocks:
    """The page; `only` limits it to some tabs (the raters' page), and tabs left out have no endpoints."""
    locale.begin_page()
    with gr.Blocks(title="rp_eval") as app:  # the browser's title bar is not translated: no words in it
        with gr.Row(equal_height=True):
            gr.Markdown(f"# {t('title')}")
            switch = locale.language_switch(app)
        if demo_models:
            gr.Markdown(_demo_banner(), elem_id="demo-banner")
        with gr.Tabs():
            if only is None or "models_tab" in only:
                with gr.Tab(t("models_tab"), id="models"):
                    models_tab.build(startup_problems or [])
            demo_mode = settings.demo_mode()
            for module, label in TABS:
                if only is not None and module not in only:
                    continue
                with gr.Tab(t(label), id=module):
                    if demo_mode and module in HEAVY_TABS:
                        gr.Markdown(t("demo_mode_off"), elem_classes="demo-mode-off")
                    else:
                        importlib.import_module(f"rp_eval.ui.{module}").build()
        locale.localize(app, switch)
    return app


def _demo_banner() -> str:
    """What the demo models are, with how this machine built them (steps and seconds) when that is known, and
    what the two finding demos show."""
    return locale.composed("demo_banner_all", _banner_text)


def _banner_text() -> str:
    from rp_eval.models import demo

    info = demo.build_info()
    if info.get("steps") and info.get("seconds") is not None:
        key = "demo_banner_shipped" if info.get("shipped") else "demo_banner_built"
        banner = t(key, steps=info["steps"], seconds=info["seconds"], threads=info.get("cpu_threads") or "?")
    else:
        banner = t("demo_banner_plain")
    return f"{banner}\n\n{t('demo_banner_findings')}"
