from __future__ import annotations

import copy

import pytest

from rp_eval.chat.formats import FORMATS
from rp_eval.finetune import data, labels

MULTI = [
    {"role": "system", "content": "あなたは花屋の楓です。"},
    {"role": "user", "content": "こんにちは。"},
    {"role": "assistant", "content": "いらっしゃいませ。"},
    {"role": "user", "content": "おすすめは？"},
    {"role": "assistant", "content": "今日はバラがきれいですよ。"},
    {"role": "user", "content": "じゃあそれを。"},
    {"role": "assistant", "content": "ありがとうございます！"},
]


def _trained_runs(ex):
    """The labelled stretches of an example, as lists of ids."""
    runs, current = [], []
    for label in ex.labels:
        if label == labels.IGNORE:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(label)
    return runs + ([current] if current else [])


@pytest.mark.parametrize("fmt", ["template", "llama2", "alpaca-ja", "chatml"])
def test_every_assistant_turn_ends_with_the_eos_id_and_only_replies_are_trained(tokenizer, fmt):
    end = labels.check_end_marker(tokenizer, FORMATS[fmt])
    ex = labels.encode(tokenizer, FORMATS[fmt], MULTI, end)
    runs = _trained_runs(ex)
    replies = [m["content"] for m in MULTI if m["role"] == "assistant"]
    assert len(runs) == len(replies)
    for run, reply in zip(runs, replies, strict=True):
        assert run[-1] == tokenizer.eos_token_id  # appended as an id ...
        assert tokenizer.eos_token_id not in run[:-1]
        assert tokenizer.decode(run[:-1]).strip() == reply  # ... and the rest is exactly the reply
    # the prompt side (persona, user turns, format markers) carries no loss
    masked = tokenizer.decode([i for i, y in zip(ex.input_ids, ex.labels, strict=True) if y == labels.IGNORE])
    assert "こんにちは" in masked and "いらっしゃいませ" not in masked
    assert len(ex.input_ids) == len(ex.labels)


def test_labels_follow_the_chat_prompt_exactly(tokenizer):
    """Up to each reply, the ids are the tokens of the prompt the chat renders for that turn."""
    from rp_eval.chat.formats import render_prompt

    fmt = FORMATS["template"]
    ex = labels.encode(tokenizer, fmt, MULTI[:3], labels.check_end_marker(tokenizer, fmt))
    prompt = tokenizer(render_prompt(fmt, tokenizer, MULTI[:2]), add_special_tokens=False)["input_ids"]
    assert ex.input_ids[: len(prompt)] == prompt
    assert set(ex.labels[: len(prompt)]) == {labels.IGNORE}


def test_format_end_of_turn_token_is_used_when_the_vocabulary_has_it(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    fmt = FORMATS["chatml"]
    end = labels.check_end_marker(tok, fmt)
    assert end.text == "<|im_end|>" and end.id == tok.convert_tokens_to_ids("<|im_end|>")
    ex = labels.encode(tok, fmt, MULTI, end)
    runs = _trained_runs(ex)
    assert [r[-1] for r in runs] == [end.id] * 3
    # one im_end closes every message; after a reply the format's own im_end is covered by the id, not doubled
    assert ex.input_ids.count(end.id) == len(MULTI)


def test_pad_equal_to_eos_keeps_the_eos_labels(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.pad_token = tok.eos_token  # the seed's setup
    assert tok.pad_token_id == tok.eos_token_id
    fmt = FORMATS["template"]
    enc = labels.encode_all(tok, fmt, [MULTI[:3], MULTI], max_length=512)
    short, long = enc.examples
    batch = labels.collator(tok)([{"input_ids": e.input_ids, "labels": e.labels} for e in enc.examples])
    y, x, mask = batch["labels"][0].tolist(), batch["input_ids"][0].tolist(), batch["attention_mask"][0].tolist()
    n = len(short.input_ids)
    assert len(long.input_ids) > n
    assert y[n - 1] == tok.eos_token_id  # the real EOS keeps its loss ...
    assert set(y[n:]) == {labels.IGNORE} and set(x[n:]) == {tok.eos_token_id}  # ... padding (same id) has none
    assert mask[:n] == [1] * n and set(mask[n:]) == {0}
    assert batch["labels"][1].tolist().count(tok.eos_token_id) == 3


def test_overflow_truncates_to_whole_turns_or_drops(tokenizer):
    fmt = FORMATS["template"]
    full = labels.encode(tokenizer, fmt, MULTI, labels.check_end_marker(tokenizer, fmt))
    first_end = full.labels.index(tokenizer.eos_token_id) + 1
    limit = first_end + 3  # room for the first turn, not the second
    enc = labels.encode_all(tokenizer, fmt, [MULTI, MULTI[:3]], max_length=limit, overflow="truncate")
    assert enc.counts() == {"kept": 2, "truncated": 1, "dropped": 0}
    cut = enc.examples[0]
    assert len(cut.input_ids) == first_end and cut.labels[-1] == tokenizer.eos_token_id
    dropped = labels.encode_all(tokenizer, fmt, [MULTI, MULTI[:3]], max_length=limit, overflow="drop")
    assert dropped.counts() == {"kept": 1, "truncated": 0, "dropped": 1}
    with pytest.raises(data.DataError, match="no conversation fits"):
        labels.encode_all(tokenizer, fmt, [MULTI], max_length=first_end - 1)


def test_eos_that_splits_into_text_pieces_is_refused(split_eos_tokenizer):
    marker = labels.end_marker(split_eos_tokenizer, FORMATS["template"])
    assert not marker.ok and len(marker.pieces) > 1
    assert "<|end|>" in marker.describe() and "REFUSED" in marker.describe()
    with pytest.raises(labels.EndMarkerError, match="not in the vocabulary"):
        labels.encode_all(split_eos_tokenizer, FORMATS["template"], [MULTI], 512)


def test_preview_shows_special_tokens_and_trained_spans(tokenizer):
    fmt = FORMATS["template"]
    ex = labels.encode(tokenizer, fmt, MULTI[:3], labels.check_end_marker(tokenizer, fmt))
    text = labels.preview_text(tokenizer, ex)
    assert "⟦ いらっしゃいませ。</s>⟧" in text and text.startswith("<s>[INST]")
    page = labels.preview_html(tokenizer, ex)
    assert '<span class="ft-special" title="id 2">&lt;/s&gt;</span></mark>' in page
