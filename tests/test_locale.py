"""The string tables: both languages have the same keys and the same placeholders; the language is picked right."""

from __future__ import annotations

import string

import pytest

from rp_eval.ui import locale


def _fields(text: str) -> set[tuple[str, str]]:
    return {(name, spec) for _, name, spec, _ in string.Formatter().parse(text) if name is not None}


def test_japanese_has_every_key_and_nothing_else():
    assert set(locale.JA) == set(locale.STRINGS), (
        f"missing in JA: {sorted(set(locale.STRINGS) - set(locale.JA))}; "
        f"not in STRINGS: {sorted(set(locale.JA) - set(locale.STRINGS))}"
    )


@pytest.mark.parametrize("key", sorted(locale.STRINGS))
def test_same_placeholders_and_markdown_marks(key):
    en, ja = locale.STRINGS[key], locale.JA.get(key, "")
    assert _fields(ja) == _fields(en), key
    for mark in ("**", "`", "\n", "|", "{{user}}"):
        assert ja.count(mark) == en.count(mark), (key, mark)


def test_japanese_is_japanese():
    # every Japanese string that is more than a name or a code has kana or kanji in it
    kana_or_kanji = [k for k, v in locale.JA.items() if any("\u3040" <= c <= "\u9fff" for c in v)]
    assert len(kana_or_kanji) > 0.85 * len(locale.JA)
    same = [k for k in locale.JA if locale.JA[k] == locale.STRINGS[k]]
    assert all(len(locale.STRINGS[k]) < 40 for k in same), same  # only short names and formats left as they are


@pytest.mark.parametrize(
    ("cookie", "accept", "expected"),
    [
        (None, "ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        (None, "ja", "ja"),
        (None, "en-US,en;q=0.9,ja;q=0.8", "en"),
        (None, "fr-FR", "en"),
        (None, None, "en"),
        ("en", "ja-JP", "en"),
        ("ja", "en-US", "ja"),
        ("xx", "ja-JP", "ja"),
    ],
)
def test_choose(cookie, accept, expected):
    assert locale.choose(cookie, accept) == expected


def test_t_outside_a_page_is_english_and_formats():
    assert locale.t("added", name="m", architecture="llama") == "Registered **m** (llama)."
    assert locale.text("added", "ja").format(name="m", architecture="llama") == "**m**（llama）を登録しました。"


def test_t_while_building_gives_keys_the_browser_translates():
    import gradio as gr

    with gr.Blocks():
        plain = locale.t("chat_send")
        formatted = locale.t("chat_import_card", mb=7)
    assert plain.startswith("__i18n__") and '"chat_send"' in plain
    key = formatted.split('"key": "')[1].split('"')[0]
    tables = locale.i18n().translations_dict
    assert tables["en"][key] == locale.STRINGS["chat_import_card"].format(mb=7)
    assert tables["ja"][key] == locale.JA["chat_import_card"].format(mb=7)
    assert tables["ja"]["chat_send"] == locale.JA["chat_send"]


def test_both_languages_for_the_login_page():
    assert locale.both("login") == f"{locale.JA['login']}<br>{locale.STRINGS['login']}"


def test_the_switch_reaches_gradios_locale_function():
    # the switch imports Gradio's front-end core module to call changeLocale; a Gradio upgrade that renames it
    # must fail here, not silently on the page
    assert locale._CORE is not None and "changeLocale" in locale._CORE.read_text()


def test_library_errors_carry_a_key_and_render_in_the_pages_language(monkeypatch):
    from rp_eval.chat.cards import CardError
    from rp_eval.chat.session import ChatError
    from rp_eval.errors import MESSAGES, RpEvalError

    inner = CardError(key="err_card_no_name", source="x.json")
    err = ChatError(key="err_chat_side_failed", model="m", error=inner)
    assert str(err) == "m: x.json: field 'data.name' is missing or empty"  # the CLI and logs: English
    assert err.key == "err_chat_side_failed" and err.values["error"] is inner
    assert locale.warn(err) == f"⚠️ {err}"  # outside a request: English
    monkeypatch.setattr(locale, "language", lambda: "ja")
    assert locale.error_text(err) == "m: x.json: 'data.name' 欄がないか空です"  # the nested error too
    assert locale.warn(RpEvalError("plain text from older code")) == "⚠️ plain text from older code"
    assert locale.warn(ValueError("not ours")) == "⚠️ not ours"
    with pytest.raises(KeyError, match="err_nope"):
        RpEvalError(key="err_nope")
    assert set(MESSAGES) <= set(locale.JA)  # every library message has its Japanese


def test_headers_and_axes_follow_the_language(monkeypatch):
    import pandas as pd

    frame = pd.DataFrame(columns=["model", "train loss", "combined_score"])
    assert list(locale.headers(frame).columns) == ["model", "train loss", "combined_score"]
    monkeypatch.setattr(locale, "language", lambda: "ja")
    assert list(locale.headers(frame).columns) == ["モデル", "学習損失", "combined_score"]  # no key: kept as is
    assert locale.axes("step", "loss", "series") == {"x_title": "ステップ", "y_title": "損失", "color_title": "系列"}


# -- the library's own words on the Japanese page: progress lines, merge verdicts, plot labels -----------------


def test_said_is_english_text_that_the_page_words_again(monkeypatch):
    from rp_eval.errors import RpEvalError, Said, said
    from tests.japanese import english_words, japanese

    line = Said("progress_replies_empty", model="demo-llama-a", done=3, total=8, empty=1)
    assert line == "demo-llama-a: 3/8 replies, 1 empty" and isinstance(line, str)  # the CLI and logs: unchanged
    reasons = (
        Said("compat_architectures", a="LlamaForCausalLM", b="MistralForCausalLM"),
        Said("compat_rope", a=1, b=2),
    )
    err = RpEvalError(key="err_compat_method", a="x", b="y", method="ties", why=reasons)
    assert str(err) == (
        "'x' and 'y' can not be merged with ties: LlamaForCausalLM vs MistralForCausalLM: different architectures; "
        "parameter-space merging is impossible; different rope settings (1 vs 2): the merge takes the first model's"
    )
    assert said(err).key == "err_compat_method" and said(ValueError("other")) == "other"
    monkeypatch.setattr(locale, "language", lambda: "ja")
    for text in (locale.error_text(line), locale.error_text(err), locale.t("ev_failed", model="m", why=said(err))):
        assert japanese(text) and english_words(text, {"ties", "m", "x", "y", "demo-llama-a"}) == [], text


def _figure_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text().strip()]


def _figures():
    """Every matplotlib figure the page shows, drawn from small hand-made tables."""
    import pandas as pd

    from rp_eval.evaluate import plots as eval_plots
    from rp_eval.ratings import plots
    from rp_eval.ui import evolve_tab

    arena = pd.DataFrame({"model": ["m1", "m2"], "score": [1010.0, 990.0], "lower": [990.0, 970.0],
                          "upper": [1030.0, 1010.0], "votes": [4, 4]})  # fmt: skip
    rates = pd.DataFrame([[float("nan"), 0.75], [0.25, float("nan")]], index=["m1", "m2"], columns=["m1", "m2"])
    counts = pd.DataFrame([[0, 4], [4, 0]], index=["m1", "m2"], columns=["m1", "m2"])
    likert = pd.DataFrame([{"model": m, "axis": a, "mean": 3.0, "lower": 2.5, "upper": 3.5, "n": 4}
                           for m in ("m1", "m2") for a in ("naturalness", "consistency", "length_fit", "overall")])  # fmt: skip
    table = pd.DataFrame({"model": ["m1", "m2"], "combined": [0.6, 0.4], "empty_reply": [0.0, 0.5]})
    return {
        "scores": plots.scores_figure(arena, say=locale.t),
        "win_rates": plots.win_rate_figure(rates, counts, say=locale.t),
        "likert": plots.likert_figure(likert, say=locale.t),
        "heatmap": eval_plots.metric_heatmap(table, colorbar=locale.t("ev_heatmap_scale"), say=locale.t),
        "evolve": evolve_tab._history_figure([(0, 0.5, 0.4), (1, 0.6, 0.5)]),
    }


def test_every_plot_is_labelled_in_japanese_and_drawn_with_japanese_glyphs(monkeypatch):
    import io
    import warnings

    from rp_eval import plotfonts
    from tests.japanese import english_words, japanese

    if len(plotfonts.families()) < 2:
        pytest.fail("no Japanese font for matplotlib (apt-get install fonts-noto-cjk)")
    monkeypatch.setattr(locale, "language", lambda: "ja")
    figures = _figures()
    for name, fig in figures.items():
        texts = _figure_texts(fig)
        assert any(japanese(t) for t in texts), (name, texts)
        assert [t for t in texts if english_words(t, {"m1", "m2", "empty_reply"})] == [], name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig.savefig(io.BytesIO(), format="png")  # as the page gets it; a glyph the font lacks is a box, and warned
        assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == [], name


def test_plots_stay_english_on_the_english_page():
    figures = _figures()
    texts = {name: " ".join(_figure_texts(fig)) for name, fig in figures.items()}
    assert "Bradley-Terry score (Elo scale) with 95% bootstrap interval" in texts["scores"]
    assert "m1 (4 votes)" in texts["scores"]
    assert "opponent" in texts["win_rates"] and "win rate of the row model" in texts["win_rates"]
    assert "Natural Japanese" in texts["likert"] and "mean score (1-5) with 95% interval" in texts["likert"]
    assert "combined" in texts["heatmap"] and "generation" in texts["evolve"]


def test_the_evolve_status_line_in_japanese_and_english(monkeypatch):
    from rp_eval.evolve.search import EvolveProgress
    from rp_eval.ui import evolve_tab
    from tests.japanese import english_words, japanese

    meta = {"weights": "default", "judge": None, "accuracy": 0.9, "pairs": 8, "lo": 0.7, "hi": 1.0,
            "by_category": {"voice": 1.0}}  # fmt: skip
    steps = [
        EvolveProgress("r", 0, 0, 8, None, "loading the source models; meta", meta=meta),
        EvolveProgress("r", 0, 1, 8, 0.61234, "generation 0 candidate 0: fitness 0.6123", [(0, 0.61, 0.6)]),
        EvolveProgress("r", 0, 3, 8, 0.6, "stopped", [(0, 0.61, 0.6)]),
        EvolveProgress("r", -1, 0, 8, 0.6, "scoring 2 best on the test split"),
        EvolveProgress("r", 1, 8, 8, 0.7, "done; meta; best", [(0, 0.61, 0.6)], True, meta),
    ]
    assert [evolve_tab._status_line(p) for p in steps] == [p.message for p in steps]  # English: the library's own
    monkeypatch.setattr(locale, "language", lambda: "ja")
    for p in steps:
        line = evolve_tab._status_line(p)
        assert japanese(line) and english_words(line, {"default", "voice"}) == [], line
    assert "第 1 世代" in evolve_tab._status_line(steps[1]) and "0.6123" in evolve_tab._status_line(steps[1])


def test_every_metric_and_meta_category_has_japanese_words_and_english_keeps_its_own():
    from rp_eval.errors import english
    from rp_eval.evaluate.meta import CATEGORIES
    from rp_eval.evaluate.metrics import METRICS
    from rp_eval.evaluate.plots import _label
    from rp_eval.ui.locale import header, in_language, t

    for name in [m.name for m in METRICS] + list(CATEGORIES) + ["judge", "judge_pairwise"]:
        shown = in_language("ja", header, name)
        assert shown != name and any("\u3040" <= c <= "\u9fff" for c in shown), name
        assert in_language("ja", _label, t, name) == shown
        english_header = in_language("en", header, name)
        assert english_header in (name, "characters") and english_header.isascii()  # "chars" had a word already
    assert _label(english, "natural_stop") == "natural_stop"  # a library caller without a page: the identifier


def test_a_japanese_font_installed_after_matplotlib_listed_the_fonts_is_found(monkeypatch):
    """matplotlib keeps its list of the system's fonts in a cache; a Japanese font installed after the list was
    made (fonts-noto-cjk added on a machine where matplotlib ran before) must still be used, not boxes."""
    from pathlib import Path

    from matplotlib import font_manager

    from rp_eval import plotfonts

    files = [p for p in font_manager.findSystemFonts() if any(h in Path(p).name.lower() for h in plotfonts.FILE_HINTS)]
    if not files:
        pytest.fail("no Japanese font file on this machine (apt-get install fonts-noto-cjk)")
    stale = [f for f in font_manager.fontManager.ttflist if f.name not in plotfonts.CJK]  # the list before the font
    monkeypatch.setattr(font_manager.fontManager, "ttflist", stale)
    plotfonts.families.cache_clear()
    try:
        assert plotfonts.families()[0] in plotfonts.CJK
    finally:
        plotfonts.families.cache_clear()
