"""The line under a reply says when the oldest messages were left out to fit the model's context, and when it waited."""

from rp_eval.chat.generate import GenerationResult
from rp_eval.ui import chat_actions
from rp_eval.ui.locale import in_language


def result(dropped: int) -> GenerationResult:
    return GenerationResult("はい。", "はい。", "eos", False, 2000, 3, 0.1, 0.02, 30.0, dropped_turns=dropped)


def test_the_footer_names_dropped_turns_in_the_page_language():
    assert "left out" not in chat_actions.footer(result(0), "m")
    assert "the oldest 4 messages were left out" in chat_actions.footer(result(4), "m")
    assert "古いメッセージ 4 件を省きました" in in_language("ja", chat_actions.footer, result(4), "m")


def test_the_footer_says_how_long_a_reply_waited_for_a_place():
    waited = GenerationResult("はい。", "はい。", "eos", False, 20, 3, 3.1, 2.6, 30.0, waited_seconds=2.44)
    assert "waited 2.4 s" in chat_actions.footer(waited, "m")
    assert "2.4 秒待ちました" in in_language("ja", chat_actions.footer, waited, "m")
    assert "wait" not in chat_actions.footer(result(0), "m")  # no word for a reply that did not wait
