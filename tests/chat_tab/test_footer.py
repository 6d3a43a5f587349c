"""The line under a reply says when the oldest messages were left out to fit the model's context."""

from rp_eval.chat.generate import GenerationResult
from rp_eval.ui import chat_actions
from rp_eval.ui.locale import in_language


def result(dropped: int) -> GenerationResult:
    return GenerationResult("はい。", "はい。", "eos", False, 2000, 3, 0.1, 0.02, 30.0, dropped_turns=dropped)


def test_the_footer_names_dropped_turns_in_the_page_language():
    assert "left out" not in chat_actions.footer(result(0), "m")
    assert "the oldest 4 messages were left out" in chat_actions.footer(result(4), "m")
    assert "古いメッセージ 4 件を省きました" in in_language("ja", chat_actions.footer, result(4), "m")
