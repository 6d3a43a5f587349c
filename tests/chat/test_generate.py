"""The stopping rules of the one generation function, pinned with a scripted model and a real tiny one."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer

from rp_eval.chat.formats import FORMATS
from rp_eval.chat.generate import (
    GenerationError,
    GenerationResult,
    GenerationSettings,
    generate,
    generate_batch,
    stream,
)
from tests.chat.scripted import ScriptedModel, byte_tokens, tokens

GREEDY = GenerationSettings(temperature=0, max_new_tokens=40)
HELLO = [{"role": "user", "content": "こんにちは"}]


def run_stream(model, tokenizer, settings=GREEDY, messages=HELLO):
    out = list(stream(model, tokenizer, FORMATS["llama2"], messages, settings))
    deltas, result = out[:-1], out[-1]
    assert isinstance(result, GenerationResult)
    assert all(isinstance(d, str) and d for d in deltas)
    return deltas, result


def scripted(tokenizer, *rows, eos=None):
    return ScriptedModel(list(rows), len(tokenizer), tokenizer.eos_token_id if eos is None else eos)


def test_stops_at_the_eos_id_and_shows_nothing_after(tokenizer):
    model = scripted(
        tokenizer, tokens(tokenizer, "はい、元気です。") + [tokenizer.eos_token_id] + tokens(tokenizer, "続き")
    )
    deltas, result = run_stream(model, tokenizer)
    assert result.text == "はい、元気です。" == "".join(deltas)
    assert result.finish_reason == "eos" and result.stop == "</s>"
    assert "続" not in result.raw_text and result.raw_text.endswith("</s>")


def test_eos_printed_as_text_pieces_stops_and_is_never_shown(tokenizer):
    # the seed's fine-tuned model: it spelled </s> as ordinary tokens and kept going
    spelled = byte_tokens(tokenizer, "</s>")
    assert tokenizer.eos_token_id not in spelled and len(spelled) == 4
    model = scripted(tokenizer, tokens(tokenizer, "わかりました。") + spelled + tokens(tokenizer, "ユーザーは言った"))
    deltas, result = run_stream(model, tokenizer)
    assert result.text == "わかりました。"
    assert result.finish_reason == "stop_string" and result.stop == "</s>"
    assert all("<" not in d for d in deltas)
    assert result.new_tokens == len(tokens(tokenizer, "わかりました。")) + 4


def test_every_id_of_a_generation_config_eos_list_ends_the_turn(tokenizer):
    extra_end = tokenizer.convert_tokens_to_ids("<pad>")
    model = scripted(
        tokenizer,
        tokens(tokenizer, "またね。") + [extra_end] + tokens(tokenizer, "まだ"),
        eos=[tokenizer.eos_token_id, extra_end],
    )
    _, result = run_stream(model, tokenizer)
    assert result.text == "またね。" and result.finish_reason == "eos"


def test_format_end_of_turn_token_is_an_end_id(tokenizer):
    chatml_tokenizer = copy.deepcopy(tokenizer)
    chatml_tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_end|>", "<|im_start|>"]})
    im_end = chatml_tokenizer.convert_tokens_to_ids("<|im_end|>")
    model = ScriptedModel(
        [tokens(chatml_tokenizer, "はい。") + [im_end] + tokens(chatml_tokenizer, "続き")],
        len(chatml_tokenizer),
        chatml_tokenizer.eos_token_id,
    )
    result = generate(model, chatml_tokenizer, FORMATS["chatml"], HELLO, GREEDY)
    assert result.text == "はい。" and result.finish_reason == "eos" and result.stop == "<|im_end|>"


def test_stop_string_split_across_streamed_chunks_is_held_back(tokenizer):
    model = scripted(tokenizer, tokens(tokenizer, "いいよ。", "\n", "ユー", "ザー", ":", "え？"))
    deltas, result = run_stream(model, tokenizer)
    assert result.text == "いいよ。" and result.finish_reason == "stop_string"
    assert result.stop == "\nユーザー:"
    assert "".join(deltas) == "いいよ。"
    assert not any("ユ" in d or "\n" in d for d in deltas)


def test_multibyte_character_split_across_tokens_never_streams_a_replacement(tokenizer):
    text = "こんにちは、元気？"
    model = scripted(tokenizer, byte_tokens(tokenizer, text) + [tokenizer.eos_token_id])
    deltas, result = run_stream(model, tokenizer)
    assert len(deltas) > 1
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == text == result.text


def test_capped_reply_is_trimmed_to_its_last_sentence(tokenizer):
    ids = tokens(tokenizer, "はい。", "そうです！", "でも、それは")
    model = scripted(tokenizer, ids + [tokenizer.eos_token_id])
    _, result = run_stream(model, tokenizer, GenerationSettings(temperature=0, max_new_tokens=len(ids)))
    assert result.text == "はい。そうです！"
    assert result.finish_reason == "length_trimmed" and result.cut_mid_sentence
    assert result.raw_text.endswith("でも、それは")


def test_capped_reply_without_any_sentence_end_is_kept(tokenizer):
    ids = tokens(tokenizer, "えっと、それは")
    model = scripted(tokenizer, ids + [tokenizer.eos_token_id])
    _, result = run_stream(model, tokenizer, GenerationSettings(temperature=0, max_new_tokens=len(ids)))
    assert result.text == "えっと、それは"
    assert result.finish_reason == "length" and result.cut_mid_sentence


def test_capped_reply_that_ended_a_sentence_is_length_not_cut(tokenizer):
    ids = tokens(tokenizer, "はい。")
    model = scripted(tokenizer, ids + [tokenizer.eos_token_id])
    _, result = run_stream(model, tokenizer, GenerationSettings(temperature=0, max_new_tokens=len(ids)))
    assert result.text == "はい。" and result.finish_reason == "length" and not result.cut_mid_sentence


def test_trimming_can_be_turned_off(tokenizer):
    ids = tokens(tokenizer, "はい。", "でも")
    model = scripted(tokenizer, ids)
    _, result = run_stream(
        model, tokenizer, GenerationSettings(temperature=0, max_new_tokens=len(ids), trim_to_sentence=False)
    )
    assert result.text == "はい。でも" and result.finish_reason == "length"


def test_batch_rows_stop_on_their_own(tokenizer):
    eos = tokenizer.eos_token_id
    rows = [
        tokens(tokenizer, "はい。") + [eos],
        tokens(tokenizer, "いいえ。") + byte_tokens(tokenizer, "</s>") + tokens(tokenizer, "また"),
        tokens(tokenizer, "ずっと話し続けるよ、ずっとね"),
    ]
    model = scripted(tokenizer, *rows)
    settings = GenerationSettings(temperature=0, max_new_tokens=12)
    results = generate_batch(model, tokenizer, FORMATS["llama2"], [HELLO, HELLO, HELLO], settings)
    assert [r.text for r in results[:2]] == ["はい。", "いいえ。"]
    assert [r.finish_reason for r in results] == ["eos", "stop_string", "length"]
    assert results[2].new_tokens == 12
    assert results[0].new_tokens == len(rows[0])


def test_bad_requests_are_refused_with_a_clear_message(tokenizer):
    model = scripted(tokenizer, [tokenizer.eos_token_id])
    with pytest.raises(GenerationError, match="empty"):
        generate(model, tokenizer, FORMATS["llama2"], [{"role": "user", "content": "  "}], GREEDY)
    with pytest.raises(GenerationError, match="no user message"):
        generate(model, tokenizer, FORMATS["llama2"], [], GREEDY)
    with pytest.raises(ValidationError, match="max_new_tokens"):
        GenerationSettings(max_new_tokens=0)


def test_real_tiny_model_batch_matches_single_rows(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    fmt = FORMATS["template"]
    conversations = [
        [{"role": "user", "content": "こんにちは"}],
        [
            {"role": "system", "content": "あなたは探偵です。"},
            {"role": "user", "content": "今日の事件は何ですか？ 詳しく教えて"},
        ],
        [
            {"role": "user", "content": "おはよう！"},
            {"role": "assistant", "content": "おはよう。"},
            {"role": "user", "content": "元気？"},
        ],
    ]
    settings = GenerationSettings(temperature=0, max_new_tokens=12)
    batch = generate_batch(model, tokenizer, fmt, conversations, settings)
    single = [generate(model, tokenizer, fmt, c, settings) for c in conversations]
    assert [r.raw_text for r in batch] == [r.raw_text for r in single]
    for r in batch:
        assert r.new_tokens <= 12 and r.prompt_tokens > 0 and r.seconds > 0
        assert r.finish_reason in ("eos", "stop_string", "length", "length_trimmed")


def test_sampling_is_reproducible_with_a_seed(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    settings = GenerationSettings(temperature=1.0, top_p=0.95, top_k=50, max_new_tokens=16, seed=3)
    a = generate(model, tokenizer, FORMATS["template"], HELLO, settings)
    b = generate(model, tokenizer, FORMATS["template"], HELLO, settings)
    assert a.raw_text == b.raw_text
