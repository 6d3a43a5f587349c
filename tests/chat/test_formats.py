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
