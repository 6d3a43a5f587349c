"""Does a model end its replies by itself? Natural-stop rate and sentences per reply on held prompts.

Every reply comes from `rp_eval.chat.generate.generate_batch`, the same function the chat and evaluation use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rp_eval.chat import text as textrules
from rp_eval.chat.formats import Message, PromptFormat
from rp_eval.chat.generate import GenerationSettings, generate_batch


@dataclass
class StopStats:
    prompts: int
    natural_stop_rate: float  # replies that ended on an end id
    end_text_rate: float  # replies where the model spelled the end marker as text (the seed's failure)
    capped_rate: float  # replies that ran into the token cap
    mean_sentences: float
    mean_new_tokens: float

    def to_dict(self) -> dict:
        return asdict(self)


def sentences(text: str) -> int:
    """Sentences in a reply: runs of sentence-ending marks, plus an unfinished tail."""
    count, previous_end = 0, False
    for c in text:
        is_end = c in textrules.SENTENCE_ENDS
        count += is_end and not previous_end
        previous_end = is_end or (previous_end and c in textrules.CLOSERS)
    return count + (bool(text.strip()) and not textrules.ends_sentence(text))


def held_prompts(conversations: list[list[Message]], n: int) -> list[list[Message]]:
    """The opening of each conversation up to its first assistant turn."""
    prompts = []
    for messages in conversations[:n]:
        first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
        prompts.append(messages[:first])
    return prompts


def task_prompts(n: int, seed: int = 0) -> list[list[Message]]:
    """`n` conversations of the evaluation task (its dev split, a seeded subset; the test split too when `n` is
    larger), each up to the user turn a reply answers: prompts the training never saw, the ones evaluation uses."""
    from rp_eval.evaluate.task import load_task

    if n <= 0:
        return []
    task = load_task()
    dev = task.select("dev")
    items = task.select("dev", n, seed) if n <= len(dev) else task.select("all", min(n, len(task.items)), seed)
    return [item.messages(task.personas[item.persona]) for item in items]


def stop_stats(
    model, tokenizer, fmt: PromptFormat, prompts: list[list[Message]], end_text: str, settings: GenerationSettings
) -> StopStats:
    results = generate_batch(model, tokenizer, fmt, prompts, settings) if prompts else []
    n = max(len(results), 1)
    return StopStats(
        prompts=len(results),
        natural_stop_rate=round(sum(r.finish_reason == "eos" for r in results) / n, 3),
        end_text_rate=round(sum(r.finish_reason == "stop_string" and r.stop == end_text for r in results) / n, 3),
        capped_rate=round(sum(r.finish_reason.startswith("length") for r in results) / n, 3),
        mean_sentences=round(sum(sentences(r.text) for r in results) / n, 2),
        mean_new_tokens=round(sum(r.new_tokens for r in results) / n, 1),
    )
