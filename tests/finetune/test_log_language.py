"""The fine-tune data preview and the run's log in the page's language: the end-marker check, the counts, the plan
and every line the run writes are kept with their message keys, so the Japanese page reads them in Japanese and
the CLI (and the English page) in English, also after the run is read back from the store."""

from __future__ import annotations

from rp_eval.finetune import job, labels
from rp_eval.finetune.config import FinetuneSettings
from rp_eval.store import finetune as runs
from rp_eval.store import get_store
from rp_eval.ui import finetune_tab
from rp_eval.ui.locale import error_text, in_language
from tests.finetune.test_labels import FORMATS
from tests.japanese import english_words, japanese

# words a Japanese log line may keep: the model's name, method and library names, metric identifiers
ALLOWED = {"tiny", "LoRA", "QLoRA", "merge_and_unload", "loss", "eval_loss", "llama2", "template"}


def _shown(lines) -> list[str]:
    return [error_text(line) for line in lines]


def test_a_runs_log_reads_in_japanese_and_in_english(tiny_base):
    s = FinetuneSettings(base_model=tiny_base, max_steps=4, batch_size=8, grad_accum=1, warmup=0, max_length=256,
                         logging_steps=2, eval_fraction=0.2, eval_steps=2, save_steps=4, stop_check_prompts=2,
                         stop_check_tokens=8)  # fmt: skip
    run_id = job.start(s)
    last = job.wait(run_id)
    assert last.status == "done", last.log
    stored = job.stored_progress(run_id)  # as the page of another process reads it: from the store
    for lines in (last.log, stored.log):
        ja = in_language("ja", lambda lines=lines: _shown(lines))
        assert len(ja) >= 8, ja
        assert [line for line in ja if not japanese(line) or english_words(line, ALLOWED)] == [], ja
        assert any("終端記号" in line and "問題なし" in line for line in ja), ja
        assert any(line.startswith("計画: 会話 ") for line in ja), ja
        assert any("自然に終わる割合" in line for line in ja), ja
        en = in_language("en", lambda lines=lines: _shown(lines))
        assert any("optimizer steps" in line for line in en) and not any(japanese(line) for line in en), en
    assert [str(line) for line in stored.log] == [str(line) for line in last.log]  # the CLI prints these
    raw = runs.get_run(get_store(), run_id).log
    assert "conversations kept" in raw  # the stored text stays readable English first


def test_the_preview_says_the_end_marker_check_in_japanese(tiny_base, split_eos_tokenizer):
    page = in_language("ja", lambda: finetune_tab._preview(tiny_base, "", 256))
    assert "プロンプト形式" in page and "独立した 1 トークン: 問題なし" in page and "件を採用" in page, page[:400]
    assert "end marker" not in page and "conversations kept" not in page
    refused = labels.end_marker(split_eos_tokenizer, FORMATS["template"])
    ja = in_language("ja", lambda: error_text(refused.describe()))
    assert "使えません" in ja and "'<|end|>' が語彙になく" in ja and "特殊トークンとして登録する" in ja, ja
    assert "REFUSED" in str(refused.describe())  # English where no page asks (logs, the CLI)


def test_no_library_message_shadows_a_page_string():
    """The library's messages are merged into the page's table (`STRINGS.update(MESSAGES)`): a key in both would
    replace the page's string without a word (a run-log key named like the tab's plan line did)."""
    import ast
    from pathlib import Path

    import rp_eval.ui.locale as locale
    from rp_eval.errors import MESSAGES

    tree = ast.parse(Path(locale.__file__).read_text(encoding="utf-8"))
    table = next(
        n.value for n in tree.body if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "STRINGS"
    )
    page_keys = {k.value for k in table.keys if isinstance(k, ast.Constant)}
    assert len(page_keys) > 300
    assert sorted(page_keys & set(MESSAGES)) == []
