from __future__ import annotations

import pytest

from rp_eval.evaluate.task import TaskError, load_task, read_items
from tests.evaluate.conftest import item, write_items


def test_the_shipped_task_is_large_enough_and_split(task):
    assert len(task.items) >= 150
    assert len({i.persona for i in task.items}) >= 6
    dev, test = task.select("dev"), task.select("test")
    assert dev and test and len(dev) + len(test) == len(task.items)
    assert not {i.id for i in dev} & {i.id for i in test}
    assert any(i.multi_turn for i in dev) and any(not i.multi_turn for i in dev)
    assert any(i.multi_turn for i in test)


def test_items_open_like_the_chat_and_end_on_the_user(task):
    it = next(i for i in task.items if i.multi_turn)
    persona = task.personas[it.persona]
    messages = it.messages(persona)
    assert messages[:2] == persona.opening()
    assert messages[-1]["role"] == "user" and messages[-1]["content"] == it.turns[-1].content
    assert "{{user}}" not in "".join(m["content"] for m in messages)


def test_subset_is_fixed_by_the_seed(task):
    a, b, c = task.select("dev", 10, seed=1), task.select("dev", 10, seed=1), task.select("dev", 10, seed=2)
    assert [i.id for i in a] == [i.id for i in b] and len(a) == 10
    assert [i.id for i in a] != [i.id for i in c]


def test_a_malformed_line_names_file_and_line(tmp_path):
    folder = write_items(tmp_path, [item(1)])
    with open(folder / "a.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"id": "t-2", "persona": \n')
    with pytest.raises(TaskError, match=r"a\.jsonl line 2: not valid JSON"):
        read_items(folder)


def test_a_bad_field_names_the_field(tmp_path):
    folder = write_items(tmp_path, [item(1), {**item(2), "split": "train"}])
    with pytest.raises(TaskError, match=r"a\.jsonl line 2: 'split' must be one of 'dev', 'test'"):
        read_items(folder)
    folder = write_items(tmp_path, [item(1, turns=["やあ", "おう"])])
    with pytest.raises(TaskError, match="end with a user turn"):
        read_items(folder)


def test_duplicate_ids_and_unknown_personas_are_refused(tmp_path, personas):
    with pytest.raises(TaskError, match="already used"):
        read_items(write_items(tmp_path / "d", [item(1), item(1)]))
    with pytest.raises(TaskError, match="unknown persona 'nobody'"):
        load_task(write_items(tmp_path / "u", [item(1, persona="nobody")]), personas)


def test_the_version_follows_the_items(tmp_path, personas):
    v1 = load_task(write_items(tmp_path, [item(1)]), personas).version
    v2 = load_task(write_items(tmp_path, [item(1, turns=["こんばんは。"])]), personas).version
    assert v1 != v2 and len(v1) == 12


def test_a_task_file_error_reads_in_japanese_on_the_japanese_page(tmp_path):
    from rp_eval.ui.locale import error_text, in_language

    (tmp_path / "a.jsonl").write_text("{oops\n", encoding="utf-8")
    with pytest.raises(TaskError) as err:
        read_items(tmp_path)
    assert str(err.value).startswith("a.jsonl line 1: not valid JSON")
    assert in_language("ja", error_text, err.value).startswith("a.jsonl の 1 行目: JSON として読めません")
