"""The Gradio app, one module per tab; this module only assembles them."""

from __future__ import annotations

import gradio as gr

from rp_eval.ui import models_tab
from rp_eval.ui.locale import t


def build_app(startup_problems: list[str] | None = None, demo_models: bool = True) -> gr.Blocks:
    with gr.Blocks(title=t("title")) as app:
        gr.Markdown(f"# {t('title')}")
        if demo_models:
            gr.Markdown(t("demo_banner"), elem_id="demo-banner")
        with gr.Tabs(), gr.Tab(t("models_tab"), id="models"):
            models_tab.build(startup_problems or [])
    return app
