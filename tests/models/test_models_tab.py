"""The Models tab: the prompt-format column says what "auto" turns into, and checking a model leaves the table
readable (the spinner sits on the message)."""

from __future__ import annotations

import json

from rp_eval.models import registry
from tests.conftest import save_tiny


def test_the_format_column_shows_what_was_detected(workspace, tiny_llama, tokenizer, tmp_path):
    from rp_eval.ui import models_tab

    registry.add_model(str(tiny_llama), "with-template")  # the test tokenizer carries a chat template
    plain = save_tiny(tmp_path / "plain", tokenizer)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    for extra in plain.glob("chat_template.*"):
        extra.unlink()
    registry.add_model(str(plain), "no-template")
    registry.add_model(str(tiny_llama), "chosen", prompt_format="chatml")
    shown = dict(zip(*models_tab.models_table()[["name", "prompt format"]].to_dict("list").values(), strict=True))
    assert shown == {"with-template": "auto → template", "no-template": "auto → llama2", "chosen": "chatml"}
    row = registry.get_model("no-template")
    row.source = "nobody/not-in-the-cache"  # a hub id whose files are not on this machine
    assert models_tab.shown_format(row, {}) == "auto (decided when first loaded)"


def test_checking_a_model_keeps_the_table_readable(workspace):
    from rp_eval.ui import build_app

    app = build_app(demo_models=False, only={"models_tab"})
    blocks = {b._id: b for b in app.blocks.values()}
    table = next(b for b in blocks.values() if getattr(b, "elem_id", None) == "models-table")
    status = next(b for b in blocks.values() if getattr(b, "elem_id", None) == "models-status")
    add = next(d for d in app.config["dependencies"] if d["targets"] and table._id in d["outputs"]
               and blocks[d["targets"][0][0]].elem_id == "model-add")  # fmt: skip
    assert add["show_progress_on"] == [status._id]
