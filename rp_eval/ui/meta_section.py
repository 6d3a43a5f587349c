"""The meta-evaluation section of the Evaluate tab: how often each score prefers the better reply of a pair.

It calls `rp_eval.evaluate.meta.meta_evaluate`, the function behind `rp-eval eval meta`, and shows the same
table. Its strings are this section's own, added to the UI's string table when the module is imported.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from rp_eval import paths
from rp_eval.errors import RpEvalError, categories
from rp_eval.ui.locale import JA, STRINGS, headers, t, warn, words
from rp_eval.ui.zerogpu import on_gpu

_EN = {
    "meta_heading": "Meta-evaluation: does the score prefer the better reply?",
    "meta_intro": (
        "Each line of a pairs file holds a conversation and two replies to it, one of them worse by construction "
        "(wrong voice, speaking for the user, cut or rambling, leaked markers or loops, bland or off topic, "
        "contradicting the persona). The table gives, for every metric with a direction, the combined score and "
        "an optional judge, the share of pairs where it prefers the better reply (a tie counts half), overall "
        "with a 95% bootstrap interval and per category. 0.5 is chance."
    ),
    "meta_pairs": "Pairs file (JSONL)",
    "meta_judge": "Judge model (optional; one forward pass per reply, no generation)",
    "meta_run": "Run the meta-evaluation",
    "meta_done": "{n} pairs; the combined score prefers the better reply in {acc:.1%} of them ({lo:.1%}–{hi:.1%}).",
    "meta_empty": "No pairs in: {cats}.",
    "meta_calibration": "Meta-evaluation accuracy of the combined score: {before} with the weights used, {after} "
    "with the fitted ones.",
    "meta_judge_bias": (
        "Judge {model}: position bias {bias:+.3f} (0 none, +1 always the reply shown second); the same winner in "
        "both orders for {same:.1%} of the pairs."
    ),
}
_JA = {
    "meta_heading": "メタ評価：スコアは良いほうの返答を選べているか",
    "meta_intro": (
        "ペアファイルの各行には、会話と、それに対する二つの返答が入っています。片方はわざと悪くしてあります"
        "（口調の取り違え、ユーザーの代弁、途切れや冗長、記号の混入やループ、当たり障りのない返事や話のすり替え、"
        "設定との矛盾）。表は、向きのある各指標・総合スコア・ジャッジ（任意）が良いほうを選んだ割合です"
        "（引き分けは半分と数えます）。全体には 95% ブートストラップ区間を、カテゴリごとの値も並べます。0.5 が偶然の水準です。"
    ),
    "meta_pairs": "ペアファイル（JSONL）",
    "meta_judge": "ジャッジモデル（任意。返答ごとに順伝播一回で、生成はしません）",
    "meta_run": "メタ評価を実行",
    "meta_done": "{n} ペア。総合スコアが良いほうを選んだ割合は {acc:.1%}（{lo:.1%}〜{hi:.1%}）。",
    "meta_empty": "ペアのないカテゴリ：{cats}",
    "meta_calibration": "総合スコアのメタ評価の正解率：使った重みで {before}、当てはめた重みで {after}。",
    "meta_judge_bias": (
        "ジャッジ {model}：位置の偏り {bias:+.3f}（0 で偏りなし、+1 で常に後に示した返答を選ぶ）。"
        "順序を入れ替えても勝者が同じだったペアは {same:.1%}。"
    ),
}
for _key, _value in _EN.items():
    STRINGS.setdefault(_key, _value)
    JA.setdefault(_key, _JA[_key])


@on_gpu(duration=300)
def run_meta(pairs: str, weights: str, judge: str) -> tuple[str, pd.DataFrame | None]:
    """The status line and the table (one row per score, one column per category)."""
    from rp_eval.evaluate.meta import meta_evaluate

    try:
        source = paths.confine(pairs, "pairs file") if pairs and pairs.strip() else None
        weights_path = str(paths.confine(weights, "weights file")) if weights and weights.strip() else None
        result = meta_evaluate(source, weights_path, judge or None)
    except RpEvalError as err:
        return warn(err), None
    lines = [
        t("meta_done", n=result.pairs, acc=result.accuracy(), lo=_overall(result, "lo"), hi=_overall(result, "hi"))
    ]
    empty = [c for c, n in result.categories.items() if n == 0]
    if empty:
        lines.append(t("meta_empty", cats=categories(empty)))
    if result.judge:
        j = result.judge
        lines.append(t("meta_judge_bias", model=j["model"], bias=j["position_bias"], same=j["consistency"]))
    return "\n\n".join(lines), headers(words(result.wide().round(3), "what", "col_"))


def calibration_note(cal) -> str:
    """The fitted weights' meta-evaluation accuracy next to the default's (a line under the calibration)."""
    shown = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    return "\n\n" + t("meta_calibration", before=shown(cal.meta_before), after=shown(cal.meta_after))


def _overall(result, column: str) -> float:
    table = result.table
    return float(table[(table["what"] == "combined") & (table["category"] == "all")][column].iloc[0])


def build(weights: gr.Textbox, names: list[str]) -> None:
    """The section, inside the Evaluate tab; `weights` is the tab's own weights box (the same weights apply)."""
    with gr.Accordion(t("meta_heading"), open=False, elem_id="ev-meta"):
        gr.Markdown(t("meta_intro"))
        with gr.Row():
            pairs = gr.Textbox(label=t("meta_pairs"), placeholder="prompts/eval/meta/pairs.jsonl", elem_id="meta-pairs")
            judge = gr.Dropdown(["", *names], value="", label=t("meta_judge"), elem_id="meta-judge")
            run = gr.Button(t("meta_run"), elem_id="meta-run")
        status = gr.Markdown(elem_id="meta-status")
        table = gr.Dataframe(column_count=0, interactive=False, wrap=True, elem_id="meta-table")
    run.click(run_meta, [pairs, weights, judge], [status, table], concurrency_limit=1)
