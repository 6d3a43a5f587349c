import pytest

from rp_eval.chat.formats import FORMATS, detect_format, end_markers, get_format, render_prompt

CONVERSATION = [
    {"role": "system", "content": "あなたは執事です。"},
    {"role": "user", "content": "おはよう"},
    {"role": "assistant", "content": "おはようございます。"},
    {"role": "user", "content": "紅茶を"},
]


def test_llama2_format():
    text = FORMATS["llama2"].render(CONVERSATION)
    assert text == (
        "<s>[INST] <<SYS>>\nあなたは執事です。\n<</SYS>>\n\nおはよう [/INST] おはようございます。 </s>"
        "<s>[INST] 紅茶を [/INST]"
    )


def test_alpaca_ja_format():
    text = FORMATS["alpaca-ja"].render(CONVERSATION)
    assert text == (
        "<s>あなたは執事です。\n\n### 指示: \nおはよう\n\n### 応答: \nおはようございます。</s>"
        "\n\n### 指示: \n紅茶を\n\n### 応答: \n"
    )
    assert FORMATS["alpaca-ja"].render(CONVERSATION[1:2]).startswith("<s>以下は、")


def test_chatml_format():
    text = FORMATS["chatml"].render(CONVERSATION)
    assert text.startswith("<|im_start|>system\nあなたは執事です。<|im_end|>\n<|im_start|>user\nおはよう<|im_end|>")
    assert text.endswith("<|im_start|>user\n紅茶を<|im_end|>\n<|im_start|>assistant\n")


def test_demo_chat_template_renders_exactly_the_builtin_llama2(tokenizer):
    # the demo tokenizer's Jinja template and the built-in format are two spellings of one format
    for conv in (CONVERSATION, CONVERSATION[1:], CONVERSATION[:2]):
        assert render_prompt(FORMATS["template"], tokenizer, conv) == FORMATS["llama2"].render(conv)


def test_detect_format(tokenizer):
    assert detect_format(tokenizer).name == "template"

    class Plain:
        chat_template = None

    assert detect_format(Plain(), "llama", "elyza/ELYZA-japanese-Llama-2-7b-instruct").name == "llama2"
    assert detect_format(Plain(), "mistral", "stabilityai/japanese-stablelm-instruct-gamma-7b").name == "alpaca-ja"
    assert detect_format(Plain(), "qwen2", "").name == "chatml"


def test_end_markers_include_what_the_template_uses():
    class WithTemplate:
        chat_template = "{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}"

    tokens, strings = end_markers(FORMATS["template"], WithTemplate())
    assert "<|im_end|>" in tokens and "<|im_end|>" in strings
    tokens, strings = end_markers(FORMATS["alpaca-ja"], WithTemplate())
    assert "### 指示" in strings and not tokens


def test_unknown_format_names_the_known_ones():
    with pytest.raises(ValueError, match="llama2"):
        get_format("vicuna")


# SillyTavern's Chat Completion prompt: several system messages (main prompt, the card, a chat start marker,
# a post-history instruction after the last user message).
SILLYTAVERN_LIKE = [
    {"role": "system", "content": "メインの指示。"},
    {"role": "system", "content": "キャラクター: 執事のセバスチャン。"},
    {"role": "system", "content": "[Start a new Chat]"},
    {"role": "user", "content": "おはよう"},
    {"role": "assistant", "content": "おはようございます。"},
    {"role": "system", "content": "返事は短く。"},
    {"role": "user", "content": "紅茶を"},
    {"role": "system", "content": "丁寧語で。"},
]


@pytest.mark.parametrize("name", ["llama2", "alpaca-ja", "chatml", "template"])
def test_every_system_message_reaches_the_prompt_in_order(name, tokenizer):
    text = render_prompt(FORMATS[name], tokenizer, SILLYTAVERN_LIKE)
    systems = [m["content"] for m in SILLYTAVERN_LIKE if m["role"] == "system"]
    at = [text.find(s) for s in systems]
    assert -1 not in at, (name, text)
    assert at == sorted(at), (name, text)


def test_llama2_folds_later_system_messages_into_the_user_turns():
    text = FORMATS["llama2"].render(SILLYTAVERN_LIKE)
    assert text == (
        "<s>[INST] <<SYS>>\nメインの指示。\n\nキャラクター: 執事のセバスチャン。\n\n[Start a new Chat]\n<</SYS>>\n\n"
        "おはよう [/INST] おはようございます。 </s><s>[INST] 返事は短く。\n\n紅茶を\n\n丁寧語で。 [/INST]"
    )


def test_the_template_takes_the_same_folded_messages_as_the_builtin(tokenizer):
    # the demo template reads only messages[0] as the system prompt: the others are folded for it
    assert render_prompt(FORMATS["template"], tokenizer, SILLYTAVERN_LIKE) == FORMATS["llama2"].render(SILLYTAVERN_LIKE)


def test_a_template_that_refuses_system_turns_gets_them_in_the_user_turn():
    class NoSystem:
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize=False, **kw):
            if any(m["role"] == "system" for m in messages):
                raise ValueError("System role not supported")
            return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    text = render_prompt(FORMATS["template"], NoSystem(), SILLYTAVERN_LIKE[:4])
    assert (
        text
        == "<user>メインの指示。\n\nキャラクター: 執事のセバスチャン。\n\n[Start a new Chat]\n\nおはよう<assistant>"
    )


CONTINUE = [*CONVERSATION, {"role": "assistant", "content": "かしこまりました。ダージリンを"}]


@pytest.mark.parametrize("name", ["llama2", "alpaca-ja", "chatml", "template"])
def test_an_assistant_message_last_is_continued(name, tokenizer):
    text = render_prompt(FORMATS[name], tokenizer, CONTINUE)
    assert text.endswith("かしこまりました。ダージリンを"), (name, text)
    # the same prompt as a finished turn would be, without its end of turn
    finished = render_prompt(FORMATS[name], tokenizer, [*CONTINUE, {"role": "user", "content": "次"}])
    assert finished.startswith(text) and len(finished) > len(text)
