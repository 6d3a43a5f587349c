from __future__ import annotations

import json

import pytest

from rp_eval.finetune import data
from rp_eval.models import demo


def _write(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
    return path


def test_openai_and_sharegpt_read_the_same(tmp_path):
    openai = {
        "system": "あなたは猫です。",
        "messages": [{"role": "user", "content": "やあ"}, {"role": "assistant", "content": "にゃ。"}],
    }
    sharegpt = {
        "conversations": [
            {"from": "system", "value": "あなたは猫です。"},
            {"from": "human", "value": "やあ"},
            {"from": "gpt", "value": "にゃ。"},
        ]
    }
    a = data.load_conversations(str(_write(tmp_path / "a.jsonl", [openai])))
    b = data.load_conversations(str(_write(tmp_path / "b.jsonl", [sharegpt])))
    assert a == b
    assert [m["role"] for m in a[0]] == ["system", "user", "assistant"]


def test_datasets_folder_loads(tmp_path):
    import datasets

    rows = [
        {"messages": [{"role": "user", "content": f"質問{i}"}, {"role": "assistant", "content": f"答え{i}。"}]}
        for i in range(3)
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    convs = data.load_conversations(str(tmp_path / "ds"))
    assert [c[1]["content"] for c in convs] == ["答え0。", "答え1。", "答え2。"]


def test_not_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\nnot json\n'
    )
    with pytest.raises(data.DataError, match="line 2 is not JSON"):
        data.load_conversations(str(path))


def test_conversation_without_assistant_turn_is_refused(tmp_path):
    path = _write(tmp_path / "x.jsonl", [{"messages": [{"role": "user", "content": "こんにちは"}]}])
    with pytest.raises(data.DataError, match="line 1: the conversation has no assistant turn"):
        data.load_conversations(str(path))


def test_unknown_sharegpt_speaker(tmp_path):
    path = _write(tmp_path / "x.jsonl", [{"conversations": [{"from": "narrator", "value": "…"}]}])
    with pytest.raises(data.DataError, match="unknown ShareGPT speaker 'narrator'"):
        data.load_conversations(str(path))


def test_missing_file():
    with pytest.raises(data.DataError, match="not found"):
        data.load_conversations("./no/such.jsonl")


def test_shipped_set_is_valid_and_distinct_from_the_demo_corpus():
    convs = data.load_conversations()
    assert len(convs) >= 30
    assert all(c[0]["role"] == "system" for c in convs)
    replies = {m["content"] for c in convs for m in c if m["role"] == "assistant"}
    demo_lines = {m["content"] for c in demo.conversations_as_messages(demo.load_corpus()) for m in c}
    assert not replies & demo_lines
    assert not {c[0]["content"] for c in convs} & demo_lines
    assert all(r[-1] in "。！？」…" for r in replies)


def test_split_eval_holds_out_a_fraction():
    convs = data.load_conversations()
    train, held = data.split_eval(convs, 0.25, seed=1)
    assert len(held) == round(len(convs) * 0.25) and len(train) + len(held) == len(convs)
    assert not [c for c in held if c in train]
