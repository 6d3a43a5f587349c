"""The one-pass judge: expected grade arithmetic, the pairwise order swap, and the refusals.

A scripted judge (a stand-in model whose next-token logits over the grade tokens are set from the prompt it
reads) pins the arithmetic down exactly; a tiny real model checks that batching and left padding change nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rp_eval.chat.formats import get_format
from rp_eval.evaluate.judge import ANSWER, Case, Judge, JudgeError, grade_ids, load_judge
from tests.evaluate.scripted_judge import ScriptedJudge


def _case(personas, reply: str, persona: str = "kansai") -> Case:
    turns = [{"role": "user", "content": "ラムネ一本ください。"}]
    return Case(personas[persona], turns, reply)


def test_pointwise_score_is_the_expected_grade_over_the_grade_tokens(personas, tokenizer):
    table = {"ええで": [0.1, 0.2, 0.3, 0.2, 0.2], "拙者": [1.0, 0, 0, 0, 0], "まいど": [0, 0, 0, 0, 1.0]}

    def rule(text):
        reply = text.split("【採点する返答】")[1]
        return next(p for key, p in table.items() if key in reply)

    model = ScriptedJudge(tokenizer, rule)
    judge = Judge(model, tokenizer, get_format("llama2"), batch_size=2)
    replies = ["ええで、冷えたん取ってくるわ。", "拙者が取って参る。", "まいど！ほな百円な。"]
    scores = judge.pointwise([_case(personas, r) for r in replies])
    # E = 1(.1) + 2(.2) + 3(.3) + 4(.2) + 5(.2) = 3.2 -> (3.2 - 1) / 4 = 0.55; grade 1 -> 0; grade 5 -> 1
    assert scores == pytest.approx([0.55, 0.0, 1.0], abs=1e-6)
    assert model.calls == 2 and model.rows == 3  # one forward per batch of two, no generation
    assert judge.pointwise([]) == []


def test_pairwise_averages_both_orders_and_reports_the_position_bias(personas, tokenizer):
    # this judge prefers the reply with "ほな" but also leans to whichever reply is shown as B
    def rule(text):
        a = text.split("【返答A】")[1].split("【返答B】")[0]
        b = text.split("【返答B】")[1]
        if "ほな" in b and "ほな" not in a:
            return [0, 0, 0.2, 0.4, 0.4]  # E = 4.2 -> B-preference 0.8
        if "ほな" in a and "ほな" not in b:
            return [0.2, 0.4, 0.2, 0.2, 0]  # E = 2.4 -> B-preference 0.35
        return [0, 0, 0.5, 0.5, 0]  # E = 3.5 -> 0.625: a pure lean to B

    judge = Judge(ScriptedJudge(tokenizer, rule), tokenizer, get_format("llama2"))
    good, bad, other = "ほな、奥の冷蔵庫から取ってな。", "冷蔵庫は奥です。", "奥の冷蔵庫にあるわ。"
    result = judge.pairwise([_case(personas, good), _case(personas, bad), _case(personas, bad)], [bad, good, other])
    assert result.first_order == pytest.approx([0.35, 0.8, 0.625])
    assert result.swapped_order == pytest.approx([0.8, 0.35, 0.625])
    # preference for the second reply given: (first order + (1 - swapped order)) / 2
    assert result.prefer_second == pytest.approx([(0.35 + 0.2) / 2, (0.8 + 0.65) / 2, 0.5])
    assert result.position_bias == pytest.approx((0.15 + 0.15 + 0.25) / 3)
    assert result.consistency == pytest.approx(2 / 3)  # the pair of equals flips with the order
    with pytest.raises(JudgeError, match="one second reply per case"):
        judge.pairwise([_case(personas, good)], [])


def test_grade_ids_are_the_tokens_after_the_answer_opening(tokenizer):
    ids = grade_ids(tokenizer)
    assert len(set(ids)) == 5
    for grade, i in zip("12345", ids, strict=True):
        assert tokenizer(ANSWER + grade, add_special_tokens=False)["input_ids"][-1] == i
        assert tokenizer.decode([i]) == grade


def test_a_tokenizer_without_single_token_grades_is_refused():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # digits exist only as a two-character word, so no grade is one token of its own after "点数："
    raw = Tokenizer(models.WordLevel({"<unk>": 0, "点数：": 1, "12": 2}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Split(pattern="点数：", behavior="isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>")
    with pytest.raises(JudgeError, match="no single token for the grade '1'"):
        grade_ids(tok)
    with pytest.raises(JudgeError, match="judge model 'words'.*can not be a one-pass judge"):
        Judge(torch.nn.Linear(1, 1), tok, get_format("llama2"), name="words")


def test_a_judge_that_is_not_registered_is_refused(workspace):
    with pytest.raises(JudgeError, match="no registered model named 'nobody'"):
        load_judge("nobody")


def test_a_real_tiny_judge_gives_the_same_grade_alone_and_in_a_padded_batch(tiny_registered, personas):
    judge = load_judge(tiny_registered, batch_size=4)
    cases = [_case(personas, "ええで。"), _case(personas, "ほな、奥の冷蔵庫から好きなん取ってな。毎度おおきに！")]
    together = judge.pointwise(cases)
    alone = [judge.pointwise([c])[0] for c in cases]
    assert together == pytest.approx(alone, abs=1e-4)
    assert all(0.0 <= s <= 1.0 for s in together)


@pytest.fixture
def wordy_registered(workspace, tmp_path) -> str:
    """A tiny registered model whose tokenizer has no digit tokens at all."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from rp_eval.models import registry

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "点数：": 3, "ござる": 4}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    folder = tmp_path / "wordy"
    shape = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), **shape)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return registry.add_model(str(folder), "wordy").name


def test_a_registered_judge_without_digit_tokens_is_refused_before_anything_is_stored(
    wordy_registered, tiny_registered, task, capsys
):
    from rp_eval.cli import main
    from rp_eval.evaluate.runner import EvalConfig, evaluate
    from rp_eval.store import evaluation as db
    from rp_eval.store import get_store

    pairs = str(Path(__file__).parent / "data" / "meta_pairs.jsonl")
    assert main(["eval", "meta", "--pairs", pairs, "--judge", "wordy"]) == 2
    err = capsys.readouterr().err
    assert "judge model 'wordy': this tokenizer has no single token for the grade '1'" in err
    with pytest.raises(JudgeError, match="no single token for the grade"):
        evaluate(EvalConfig(models=[tiny_registered], judge_model="wordy", limit=2), task=task)
    assert db.list_runs(get_store()) == []
