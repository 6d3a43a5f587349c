"""How long a fine-tuning run will be, said before it starts: conversations kept for training and held out,
optimizer steps per epoch and in all, warm-up, and how often the loss, the held-out loss and checkpoints come.

The step count is transformers' own rule (`Trainer.set_initial_training_values`: batches per epoch, divided by
the accumulation and rounded up, times the epochs and rounded up; `max_steps` > 0 overrides it), so the number
shown is the number the Trainer runs. A warm-up as long as the run or longer is refused: the learning rate would
never reach its peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rp_eval.errors import RpEvalError, Said
from rp_eval.finetune.config import FinetuneSettings


class PlanError(RpEvalError):
    """Settings that make a run pointless (a warm-up at least as long as the run)."""


@dataclass(frozen=True)
class Plan:
    conversations: int
    train: int  # conversations trained on
    held: int  # held out for the eval loss
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    logging_steps: int
    eval_steps: int  # 0: no held-out set
    save_steps: int

    def describe(self) -> str:
        """The plan as a `Said` (English in the log's text; the page words it in its language)."""
        held = Said("ft_plan_held", held=self.held, every=self.eval_steps) if self.held else ""
        loss = (
            Said("ft_plan_loss_each") if self.logging_steps == 1 else Said("ft_plan_loss_every", n=self.logging_steps)
        )
        return Said(
            "ft_plan_line",
            total=self.total_steps,
            per_epoch=self.steps_per_epoch,
            train=self.train,
            conversations=self.conversations,
            held=held,
            warmup=self.warmup_steps,
            loss=loss,
            save=self.save_steps,
        )


def steps(s: FinetuneSettings, examples: int) -> tuple[int, int]:
    """(steps per epoch, total optimizer steps) for `examples` training examples, as the Trainer counts them."""
    batches = math.ceil(max(examples, 1) / s.batch_size)
    per_epoch = max(batches // s.grad_accum + int(batches % s.grad_accum > 0), 1)
    total = s.max_steps if s.max_steps > 0 else math.ceil(s.epochs * per_epoch)
    return per_epoch, max(total, 1)


def warmup_steps(s: FinetuneSettings, total: int) -> int:
    """A warm-up below 1 is a share of the steps (rounded up), else a number of steps (transformers' rule)."""
    return int(s.warmup) if s.warmup >= 1 else math.ceil(total * s.warmup)


def plan(s: FinetuneSettings, conversations: int, held: int) -> Plan:
    """The run `s` makes on `conversations` (of which `held` are held out). Raises PlanError on a warm-up that
    is not shorter than the run."""
    train = conversations - held
    per_epoch, total = steps(s, train)
    warm = warmup_steps(s, total)
    if warm >= total:
        raise PlanError(key="err_ft_warmup", warm=warm, total=total)
    return Plan(
        conversations=conversations,
        train=train,
        held=held,
        steps_per_epoch=per_epoch,
        total_steps=total,
        warmup_steps=warm,
        logging_steps=s.logging_steps,
        eval_steps=(s.eval_steps or max(1, total // 8)) if held else 0,
        save_steps=s.save_steps or max(1, total // 4),
    )


def plan_data(s: FinetuneSettings) -> Plan:
    """`plan` on the run's own data (read and split as the run will); DataError for data that can not be used."""
    from rp_eval.finetune import data as datalib

    conversations = datalib.load_conversations(s.data, s.data_split)
    train, held = datalib.split_eval(conversations, s.eval_fraction, s.seed)
    return plan(s, len(conversations), len(held))
