"""The Evolve tab and `rp-eval evolve run` on the researcher's own task: a JSONL file in the prompts/eval format is
what the candidates are scored on; a bad line is refused with its file and line (in Japanese on a Japanese page)
before anything is stored; the fitness line names the task, the weights and the judge."""

from __future__ import annotations

import json

import pytest

from rp_eval.evaluate.task import TaskError
from rp_eval.evolve.search import SearchSettings, evolve
from rp_eval.store import evolve as db
from rp_eval.store import get_store
from rp_eval.ui.locale import in_language
from tests.evolve.test_search import FAST, _family_genome


def _item(id_: str, split: str, text: str) -> dict:
    return {"id": id_, "persona": "samurai", "split": split, "situation": "道を尋ねる",
            "turns": [{"role": "user", "content": text}]}  # fmt: skip


@pytest.fixture
def own_task(tmp_path):
    path = tmp_path / "my-task.jsonl"
    rows = [_item("mine-1", "dev", "城まではどう行けばよい？"), _item("mine-2", "dev", "腹が減った。"),
            _item("mine-3", "test", "刀を見せてくれ。")]  # fmt: skip
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_the_search_scores_candidates_on_the_task_file_it_is_given(tiny_family, workspace, own_task, monkeypatch):
    from rp_eval.evaluate import fitness

    seen: list[str] = []
    real = fitness.generate_items

    def recording(model, tokenizer, fmt, task, items, *rest):
        seen.extend(i.id for i in items)
        yield from real(model, tokenizer, fmt, task, items, *rest)

    monkeypatch.setattr(fitness, "generate_items", recording)
    settings = SearchSettings(**{**FAST, "population": 2, "budget": 2}, task=str(own_task))
    events = list(evolve(_family_genome(tiny_family), settings, "own"))
    assert events[-1].done
    assert set(seen) == {"mine-1", "mine-2", "mine-3"}  # dev items for the candidates, the test item for the best
    assert db.get_run(get_store(), "own").settings["task"] == str(own_task)  # a resumed run scores the same items


def test_a_bad_task_line_is_refused_with_its_file_and_line_before_the_run_exists(tiny_family, workspace):
    tmp_path = workspace  # a path typed in the tab must lie in the workspace (or another allowed root)
    tmp_path.mkdir(parents=True, exist_ok=True)
    bad = tmp_path / "broken.jsonl"
    good = json.dumps(_item("ok-1", "dev", "やあ"), ensure_ascii=False)
    bad.write_text(good + "\n" + json.dumps({"id": "x-2", "split": "train", "turns": []}) + "\n", encoding="utf-8")
    with pytest.raises(TaskError) as caught:
        list(evolve(_family_genome(tiny_family), SearchSettings(**FAST, task=str(bad)), "broken"))
    assert str(caught.value).startswith("broken.jsonl line 2: 'persona' is missing")
    assert db.get_run(get_store(), "broken") is None

    from rp_eval.ui import evolve_tab

    base, a, b = (str(tiny_family[k]) for k in ("base", "a", "b"))
    form = [[a, b], base, "dare_ties", 2, False, "broken-tab", 2, 2, 0.3, 0, 2, 6]
    said = in_language("ja", lambda: list(evolve_tab.start(*form, None, str(bad), "", "")))
    assert len(said) == 1, said
    line = said[0][0]
    assert "broken.jsonl の 2 行目" in line and "「persona」がありません" in line and "'dev'、'test' のどれか" in line
    not_json = tmp_path / "notjson.jsonl"
    not_json.write_text(good + "\n{oops\n", encoding="utf-8")
    said = in_language("ja", lambda: list(evolve_tab.start(*form, None, str(not_json), "", "")))
    assert "notjson.jsonl の 2 行目: JSON として読めません" in said[0][0]
    missing = in_language("ja", lambda: list(evolve_tab.start(*form, None, str(tmp_path / "none.jsonl"), "", "")))
    assert "課題ファイルもフォルダもありません" in missing[0][0]
    assert db.get_run(get_store(), "broken-tab") is None


def test_the_fitness_line_names_task_weights_and_judge_once(own_task):
    from rp_eval.ui import evolve_tab

    meta = {"accuracy": 0.75, "lo": 0.5, "hi": 0.9, "pairs": 8, "weights": "calibrated", "judge": "judge-model",
            "by_category": {"voice": 1.0}}  # fmt: skip
    ja = in_language("ja", evolve_tab._fitness_meta_line, meta, str(own_task))
    assert ja.count("適応度") == 1 and "my-task.jsonl" in ja and "calibrated" in ja and "judge-model" in ja
    assert "適合度" not in ja and "75.0%" in ja
    en = in_language("en", evolve_tab._fitness_meta_line, {}, None)
    assert "prompts/eval/items" in en and "weights `default`" in en and "judge none" in en
