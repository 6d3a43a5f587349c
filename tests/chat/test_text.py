from rp_eval.chat import text as t


def test_find_stop_returns_earliest_stop():
    assert t.find_stop("はい。</s>ユーザー:", ["ユーザー:", "</s>"]) == 3
    assert t.find_stop("はい。", ["</s>"]) is None
    assert t.find_stop("はい", ["", "x"]) is None


def test_held_back_covers_a_tail_that_may_become_a_stop_string():
    stops = ["</s>", "\nユーザー:"]
    assert t.held_back("はい。<", stops) == 1
    assert t.held_back("はい。</", stops) == 2
    assert t.held_back("はい。\nユー", stops) == 3
    assert t.held_back("はい。", stops) == 0
    assert t.held_back("はい。 ", stops) == 1  # trailing whitespace waits: the final text strips it
    assert t.held_back("a<b", stops) == 0


def test_showable_never_shows_half_a_character():
    assert t.showable("こんに\ufffd") == "こんに"
    assert t.showable("こ\ufffdんに") == "こんに"  # bytes that can never form a character are dropped
    assert t.showable("  はい") == "はい"


def test_trim_to_last_whole_sentence():
    assert t.trim_to_sentence("はい。そうです！でもね") == "はい。そうです！"
    assert t.trim_to_sentence("「行こう」と言っ") == "「行こう」"
    assert t.trim_to_sentence("本当？うん…そして") == "本当？うん…"
    assert t.trim_to_sentence("Yes. I think so. But") == "Yes. I think so."
    assert t.trim_to_sentence("version 3.5 is") == ""
    assert t.trim_to_sentence("終わりのない文") == ""
    assert t.trim_to_sentence("そうだね。」次") == "そうだね。」"


def test_an_apostrophe_or_a_quote_alone_is_no_sentence_end():
    assert t.trim_to_sentence("I don't know what you mean and") == ""
    assert t.trim_to_sentence("Don’t go. I won’t") == "Don’t go."
    assert t.trim_to_sentence('He said "Yes." and then') == 'He said "Yes."'
    assert t.trim_to_sentence("I like it (a lot) and") == ""
    assert t.trim_to_sentence("(Nods.) And") == "(Nods.)"
    assert t.trim_to_sentence("それは「本当？」と") == "それは「本当？」"
    assert not t.ends_sentence("don'") and not t.ends_sentence("version 3.'")


def test_ends_sentence():
    assert t.ends_sentence("はい。")
    assert t.ends_sentence("「はい」 ")
    assert t.ends_sentence("Done.")
    assert not t.ends_sentence("はい、")
    assert not t.ends_sentence("")


def test_clean_reply():
    assert t.clean_reply(" はい。\ufffd\n") == "はい。"
