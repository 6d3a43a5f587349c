"""Each metric of the registry on replies made to hit it and to miss it."""

from __future__ import annotations

import pytest

from rp_eval.chat.personas import StyleMarkers
from rp_eval.evaluate import metrics as m
from rp_eval.evaluate.metrics import METRICS, LengthTarget, Reply, measure

SAMURAI = StyleMarkers(first_person=["拙者"], expected=["ござる", "殿"], forbidden=["です。"], politeness="archaic")
BUTLER = StyleMarkers(first_person=["わたくし"], expected=["ございます", "旦那様"], politeness="very polite")
KANSAI = StyleMarkers(first_person=["うち"], expected=["やで", "へん"], politeness="casual")
TOHOKU = StyleMarkers(first_person=["おら"], expected=["べ", "だべ"], politeness="casual")


def reply(text: str, **kw) -> Reply:
    kw.setdefault("style", SAMURAI)
    kw.setdefault("others", (BUTLER, KANSAI, TOHOKU))
    kw.setdefault("character", "鷹森源之丞")
    return Reply(text=text, **kw)


# (metric, reply, expected value): at least one case per metric on each side of it
CASES = [
    (m.natural_stop, reply("うむ。", finish_reason="eos"), 1.0),
    (m.natural_stop, reply("うむ。", finish_reason="stop_string"), 1.0),
    (m.natural_stop, reply("うむ。", finish_reason="length_trimmed"), 0.0),
    (m.length_capped, reply("うむ。", finish_reason="length"), 1.0),
    (m.length_capped, reply("うむ。", finish_reason="eos"), 0.0),
    (m.cut_mid_sentence, reply("うむ。", cut_mid_sentence=True), 1.0),
    (m.cut_mid_sentence, reply("うむ。"), 0.0),
    (m.empty_reply, reply("  "), 1.0),
    (m.empty_reply, reply("うむ。"), 0.0),
    (m.unfinished_ending, reply("明日は峠を越えて、"), 1.0),
    (m.unfinished_ending, reply("宿場まではあと三里ほどで"), 1.0),
    (m.unfinished_ending, reply("よかろう、参ろう！"), 0.0),
    (m.unfinished_ending, reply("「ならば参ろう」"), 0.0),
    (m.unfinished_ending, reply(""), 0.0),  # nothing shown is `empty_reply`
    (m.chars, reply("拙者は 源之丞。"), 7.0),
    (m.chars, reply(" \n"), 0.0),
    (m.sentences, reply("うむ。よかろう！参ろうか？"), 3.0),
    (m.sentences, reply("「うむ。」それで"), 2.0),
    (m.sentences, reply(""), 0.0),
    (m.length_in_range, reply("よき雨でござるな。"), 1.0),
    (m.length_in_range, reply("よき雨でござるな。" * 12), 0.0),
    (m.length_in_range, reply("うむ。", target=LengthTarget(min_chars=5)), 0.0),
    (m.special_token_leak, reply("承知したでござる。</s>"), 1.0),
    (m.special_token_leak, reply("### 指示: 次の"), 1.0),
    (m.special_token_leak, reply("承知したでござる。\n### Response:"), 1.0),
    (m.special_token_leak, reply("承知したでござる。\n\n### 返答\n"), 1.0),
    (m.special_token_leak, reply("承知したでござる。"), 0.0),
    (m.special_token_leak, reply("三番の札でござる。"), 0.0),
    (m.length_fit, reply("よき雨でござるな。"), 1.0),
    (m.length_fit, reply("あ" * 120 + "。"), 1 - (121 - 80) / 160),
    (m.length_fit, reply("うむ。" * 4), 1 - 2 / 6),  # four sentences: two over a limit of two
    (m.length_fit, reply("あ" * 300 + "。"), 0.0),
    (m.overlong, reply("あ" * 160), 0.0),
    (m.overlong, reply("あ" * 240), 0.5),
    (m.overlong, reply("あ" * 400), 1.0),
    (m.assistant_voice, reply("何かあればお気軽にお尋ねください。"), 1.0),
    (m.assistant_voice, reply("何かあれば拙者に申されよ。"), 0.0),
    (m.topic_shift, reply("ところで、明日の天気はどうでござろう。"), 1.0),
    (m.topic_shift, reply("峠の茶屋でござる。ところで腹は減っておらぬか。"), 0.0),  # answered first
    (m.role_tag_leak, reply("鷹森源之丞：うむ、参ろう。"), 1.0),
    (m.role_tag_leak, reply("うむ。\nアシスタント: 承知"), 1.0),
    (m.role_tag_leak, reply("うむ、参ろう。"), 0.0),
    (m.speaks_for_user, reply("うむ。\nユーザー: ありがとう"), 1.0),
    (m.speaks_for_user, reply("うむ。あなた：そうですね"), 1.0),
    (m.speaks_for_user, reply("あなたの刀は見事でござる。"), 0.0),
    (m.speaks_for_user, reply("うむ、参ろう。\n女将「お気をつけて」"), 1.0),  # another speaker's line
    (m.speaks_for_user, reply("うむ、参ろう。\nあなたは笠をかぶり、先に歩き出した。"), 1.0),  # narrating the user
    (m.speaks_for_user, reply("うむ。（あなたは黙ってうなずく）"), 1.0),
    (m.speaks_for_user, reply("参ろう。\n女将は「またおいで」と手を振った。"), 1.0),
    (m.speaks_for_user, reply("うむ。\nあなたが来てくれて助かったでござる。"), 0.0),  # speech, not narration
    (m.speaks_for_user, reply("拙者「参ろう」"), 0.0),  # the character's own first person is not another speaker
    (m.speaks_for_user, reply("それは「草団子」でござる。"), 0.0),  # a quote in the first line is speech
    (m.speaks_for_user, reply("鷹森源之丞：参ろう。"), 0.0),  # its own tag is role_tag_leak
    (m.prompt_echo, reply("この雨はいつ止むのでしょうか", last_user="この雨はいつ止むのでしょうか"), 1.0),
    (m.prompt_echo, reply("明日には止むでござろう。", last_user="この雨、いつごろ止むと思いますか？"), 0.0),
    (m.japanese_share, reply("拙者は侍でござる。"), 1.0),
    (m.japanese_share, reply("I am a samurai."), 0.0),
    (m.japanese_share, reply("。！"), 0.0),
    (m.mixed_language, reply("拙者はsamuraiでござる。"), 1.0),
    (m.mixed_language, reply("안녕하세요でござる。"), 1.0),
    (m.mixed_language, reply("拙者はAIではござらぬ。"), 0.0),
    (m.distinct_1, reply("あいうえお"), 1.0),
    (m.distinct_1, reply("ああああ"), 0.25),
    (m.distinct_2, reply("あいあい"), 2 / 3),
    (m.distinct_2, reply("あいう"), 1.0),
    (m.repeated_ngrams, reply("あいうえお"), 0.0),
    (m.repeated_ngrams, reply("あいうえあいうえ"), 0.2),
    (m.repeated_sentences, reply("雨は止まぬ。峠は遠い。雨は止まぬ！"), 1 / 3),
    (m.repeated_sentences, reply("峠は遠い。", history=("峠は遠い。まずは茶でも。",)), 1.0),  # said last turn
    (m.repeated_sentences, reply("雨は止まぬ。峠は遠い。"), 0.0),
    (m.degenerate_repetition, reply("参ろう参ろう参ろう参ろう"), 1.0),
    (m.degenerate_repetition, reply("参ろう、いざ参ろう。"), 0.0),
    (m.first_person_ok, reply("拙者が参ろう。"), 1.0),
    (m.first_person_ok, reply("参ろう。"), 1.0),
    (m.first_person_ok, reply("わたくしが参りましょう。"), 0.0),
    (m.expected_markers, reply("承知でござる。"), 1.0),
    (m.expected_markers, reply("承知した。"), 0.0),
    (m.expected_markers, reply("何でも", style=StyleMarkers()), 1.0),
    (m.forbidden_markers, reply("そうです。"), 1.0),
    (m.forbidden_markers, reply("そうでござる。"), 0.0),
    (m.other_persona_markers, reply("そうやで。"), 1.0),
    (m.other_persona_markers, reply("旦那様、お茶をどうぞ。"), 1.0),
    (m.other_persona_markers, reply("団子を食べるでござる。"), 0.0),  # "べ" alone is too short to count
    (m.card_grounding, reply("拙者は越後の浪人でござる。", system="拙者と名乗る、越後から来た浪人。"), 1.0),
    (m.card_grounding, reply("拙者は薩摩の浪人でござる。", system="拙者と名乗る、越後から来た浪人。"), 2 / 3),
    (m.card_grounding, reply("茶屋で団子を食べた。", last_user="団子は好き？", history=("茶屋へ参ろう。",)), 1.0),
    (m.card_grounding, reply("峠を越えた。"), 0.5),  # one-character words are not checked
    (m.card_grounding, reply("うむ、よかろう。"), 0.5),  # no fact-bearing word: nothing to check
    (m.marker_rate, reply("拙者でござる。"), 100 * 2 / 7),
    (m.marker_rate, reply("ござるござるござる殿"), 100 * 4 / 10),
    (m.marker_rate, reply("うむ。"), 0.0),
    (m.politeness_match, reply("うむ、参ろう。"), 1.0),
    (m.politeness_match, reply("はい、参りましょう。"), 0.0),
    (m.politeness_match, reply("かしこまりました。", style=BUTLER), 1.0),
    (m.politeness_match, reply("わかった。", style=BUTLER), 0.0),
    (m.politeness_match, reply("何でも", style=StyleMarkers()), 1.0),
]


@pytest.mark.parametrize(("fn", "r", "expected"), CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_metric(fn, r, expected):
    assert fn(r) == pytest.approx(expected)


def test_every_metric_is_tested_on_both_sides_and_documented():
    for metric in METRICS:
        values = {expected for fn, _, expected in CASES if fn is metric.fn}
        assert len(values) >= 2, f"{metric.name} needs a case on each side"
        assert metric.doc, f"{metric.name} has no docstring"
        if metric.good is not None:
            assert all(0.0 <= v <= 1.0 for v in values)


def test_measure_gives_every_metric_and_the_score_direction():
    out = measure(reply("拙者、参るでござる。"))
    assert list(out) == [x.name for x in METRICS]
    assert m.BY_NAME["natural_stop"].score(1.0) == 1.0 and m.BY_NAME["length_capped"].score(1.0) == 0.0
    assert m.BY_NAME["chars"].score(5.0) is None
