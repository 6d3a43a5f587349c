"""The judge in one pass: any registered model grades replies with no generation at all.

The judge reads a rubric, the persona, the conversation and the reply, and its answer is opened for it with
"点数：". Its grade is not sampled: the score is the expected grade Σ k·p(k), with p the judge's next-token
distribution restricted to the five grade tokens "1".."5" (renormalised over them). One batched forward pass
per batch of prompts, no decoding, so it is as cheap as one prefill and free of sampling noise.

- `Judge.pointwise`: each reply alone, on [0, 1] ((E - 1) / 4); this is the `judge` metric.
- `Judge.pairwise`: two replies side by side, asked in both orders; the two answers are averaged so the
  position of a reply cancels out, and how much the judge leans to one position is reported (`position_bias`).

Which ids the grades are depends on the tokenizer: `grade_ids` finds, for this tokenizer, the one token that
follows "点数：" for each grade, and refuses a tokenizer that spells a grade in several tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rp_eval.chat.formats import Message, PromptFormat, render_prompt
from rp_eval.chat.personas import Persona
from rp_eval.errors import RpEvalError

GRADES = ("1", "2", "3", "4", "5")
ANSWER = "点数："  # the opening of the judge's answer; the grade is the next token

POINTWISE_RUBRIC = """あなたはキャラクターになりきった会話（ロールプレイ）を採点する審査員です。
キャラクター設定と会話の流れを読み、最後に置かれた{char}の返答がどれほど良いかを1から5の整数で評価してください。

見るところ:
- {char}の一人称・語尾・話し方が設定どおりで、ほかのキャラクターの口調が混じっていないか
- 設定にある事実（名前、仕事、暮らし、過去の出来事など）と矛盾していないか
- 相手の言葉にきちんと応じ、その場面らしい中身があるか（当たり障りのない一般論や話のすり替えは減点）
- {user}の台詞や行動を勝手に書いていないか
- 文が途中で切れていないか、同じ言い回しの繰り返しや、記号・指示文の混入がないか
- 会話の一往復として長すぎず短すぎないか

5: どの点も申し分なく、{char}らしさが生きている
4: おおむね良いが、小さな不自然さが一つある
3: 応答として成り立つが、口調の揺れや中身の薄さが目立つ
2: キャラクターや会話の流れが崩れている箇所がはっきりある
1: 返答として使えない（別人の口調、設定との矛盾、相手の代弁、途切れ、繰り返しなど）

数字一つだけで答えてください。"""

PAIRWISE_RUBRIC = """あなたはキャラクターになりきった会話（ロールプレイ）を比べる審査員です。
キャラクター設定と会話の流れを読み、続きとして書かれた{char}の返答AとBのどちらが良いかを判定してください。

比べるところ: {char}らしい一人称と口調、設定の事実との食い違いのなさ、相手の言葉への応じ方と中身、
{user}の台詞を勝手に書いていないこと、途切れや繰り返しや記号の混入がないこと、一往復としてちょうどよい長さ。

1: Aのほうがはっきり良い
2: Aのほうがやや良い
3: 優劣をつけられない
4: Bのほうがやや良い
5: Bのほうがはっきり良い

数字一つだけで答えてください。"""


class JudgeError(RpEvalError):
    """A model that can not serve as the judge, or a judge asked for something it can not do."""


@dataclass(frozen=True)
class Case:
    """What the judge reads about one reply: the persona, the conversation so far (filled messages, ending on a
    user turn, without the persona's opening) and the reply."""

    persona: Persona
    turns: Sequence[Message]
    reply: str


@dataclass
class Pairwise:
    prefer_second: list[float]  # per pair: how much the judge prefers the second reply given, both orders averaged
    first_order: list[float]  # per pair: B-preference when the pair is shown as given (A = first)
    swapped_order: list[float]  # per pair: B-preference when shown swapped (A = second)

    @property
    def position_bias(self) -> float:
        """Mean lean towards whichever reply is shown as B, on [-1, 1]: 0 is none, +1 always B, -1 always A."""
        if not self.first_order:
            return 0.0
        return float(np.mean([a + b - 1.0 for a, b in zip(self.first_order, self.swapped_order, strict=True)]))

    @property
    def consistency(self) -> float:
        """Share of pairs whose winner is the same in both orders (a tie in either order counts half)."""
        if not self.first_order:
            return 0.0
        same = [
            0.5 if a == 0.5 or b == 0.5 else float((a > 0.5) == (b < 0.5))
            for a, b in zip(self.first_order, self.swapped_order, strict=True)
        ]
        return float(np.mean(same))


def grade_ids(tokenizer) -> list[int]:
    """The token id of each grade "1".."5" as it follows the answer opening "点数：" for this tokenizer;
    JudgeError if a grade is not one token there (then no single next-token distribution holds the grade)."""
    base = tokenizer(ANSWER, add_special_tokens=False)["input_ids"]
    ids = []
    for grade in GRADES:
        full = tokenizer(ANSWER + grade, add_special_tokens=False)["input_ids"]
        if full[: len(base)] != base or len(full) != len(base) + 1 or full[-1] == tokenizer.unk_token_id:
            spelled = full[len(base) :] if full[: len(base)] == base else full
            raise JudgeError(key="err_judge_grade", grade=grade, n=len(spelled), tokens=spelled)
        ids.append(full[-1])
    if len(set(ids)) != len(ids):
        raise JudgeError(key="err_judge_same_token", ids=ids)
    return ids


def _conversation(case: Case, user: str) -> str:
    lines = [f"{case.persona.name if m['role'] == 'assistant' else user}: {m['content']}" for m in case.turns]
    return "\n".join(lines)


def pointwise_messages(case: Case, user: str = "あなた") -> list[Message]:
    body = (
        f"【キャラクター設定】\n{case.persona.system_text(user)}\n\n【会話】\n{_conversation(case, user)}\n\n"
        f"【採点する返答】\n{case.persona.name}: {case.reply}"
    )
    rubric = POINTWISE_RUBRIC.format(char=case.persona.name, user=user)
    return [Message(role="system", content=rubric), Message(role="user", content=body)]


def pairwise_messages(case: Case, second: str, user: str = "あなた") -> list[Message]:
    name = case.persona.name
    body = (
        f"【キャラクター設定】\n{case.persona.system_text(user)}\n\n【会話】\n{_conversation(case, user)}\n\n"
        f"【返答A】\n{name}: {case.reply}\n\n【返答B】\n{name}: {second}"
    )
    rubric = PAIRWISE_RUBRIC.format(char=name, user=user)
    return [Message(role="system", content=rubric), Message(role="user", content=body)]


class Judge:
    """A loaded model used as the judge (checked once: its grade ids are found when it is made)."""

    def __init__(self, model, tokenizer, fmt: PromptFormat, name: str = "judge", batch_size: int = 8) -> None:
        self.model, self.tokenizer, self.format, self.name = model, tokenizer, fmt, name
        self.batch_size = batch_size
        try:
            self.ids = grade_ids(tokenizer)
        except JudgeError as err:
            raise JudgeError(key="err_judge_model", name=name, error=err) from None
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        self.max_tokens = int(limit) if limit else None
        pad = tokenizer.pad_token_id
        self.pad = pad if pad is not None else (tokenizer.eos_token_id or 0)

    def prompt(self, messages: list[Message]) -> str:
        return render_prompt(self.format, self.tokenizer, messages) + ANSWER

    def expected_grades(self, prompts: list[str]) -> np.ndarray:
        """Σ k·p(k) over the grade tokens at the position after each prompt, on [1, 5]; longest prompts first in
        batches (less padding), left-padded, one forward pass per batch."""
        import torch

        encoded = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        if self.max_tokens:
            encoded = [ids[-self.max_tokens :] for ids in encoded]  # an over-long prompt keeps its end
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        out = np.zeros(len(encoded))
        grades = torch.arange(1, len(GRADES) + 1, dtype=torch.float32)
        device = self.model.device
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(encoded[i]) for i in rows)
            ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                mask[r, width - len(encoded[i]) :] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    position_ids=positions.to(device),
                    use_cache=False,
                    logits_to_keep=1,
                ).logits[:, -1, self.ids]
            p = logits.float().softmax(-1).cpu()
            out[rows] = (p @ grades).numpy()
        return out

    def pointwise(self, cases: Sequence[Case], user: str = "あなた") -> list[float]:
        """Each reply's grade on [0, 1] ((E[grade] - 1) / 4), in the order given."""
        if not cases:
            return []
        grades = self.expected_grades([self.prompt(pointwise_messages(c, user)) for c in cases])
        return [round(float((g - 1) / 4), 6) for g in grades]

    def pairwise(self, cases: Sequence[Case], seconds: Sequence[str], user: str = "あなた") -> Pairwise:
        """For each case, its reply (first) against `seconds[i]`; both orders in one batch."""
        if len(cases) != len(seconds):
            raise JudgeError(f"pairwise judging needs one second reply per case ({len(cases)} vs {len(seconds)})")
        if not cases:
            return Pairwise([], [], [])
        shown = [*zip(cases, seconds, strict=True)] + [
            (Case(c.persona, c.turns, s), c.reply) for c, s in zip(cases, seconds, strict=True)
        ]
        prompts = [self.prompt(pairwise_messages(a, other, user)) for a, other in shown]  # as given, then swapped
        for_b = (self.expected_grades(prompts) - 1) / 4  # preference for whichever reply is shown as B
        first, second = for_b[: len(cases)], for_b[len(cases) :]
        prefer = (first + (1 - second)) / 2
        return Pairwise(
            [round(float(v), 6) for v in prefer],
            [round(float(v), 6) for v in first],
            [round(float(v), 6) for v in second],
        )


def load_judge(name: str, batch_size: int = 8) -> Judge:
    """A registered model as the judge, through the model cache; JudgeError for a name that is not registered
    or a tokenizer without single-token grades."""
    from rp_eval.models.loading import model_cache
    from rp_eval.models.registry import RegistryError, get_model

    try:
        row = get_model(name)
    except RegistryError as err:
        raise JudgeError(key="err_judge_unknown", error=err) from None
    loaded = model_cache().get(row)
    return Judge(loaded.model, loaded.tokenizer, loaded.format, name=name, batch_size=batch_size)
