"""Tokenisation that learns to stop.

A conversation is rendered with the model's prompt format (`render_prompt`, the same code the chat uses) and
cut into segments: the prompt text before each assistant turn (no loss), the reply (loss), then the end id
appended as a token id, never as text (loss). The end id is the format's end-of-turn token when the vocabulary
has it (e.g. `<|im_end|>`), else the tokenizer's EOS. Padding is masked by position in the collator
(`DataCollatorForSeq2Seq` pads labels with -100), never by comparing ids with the pad id, so the EOS stays in
the labels even when pad = eos.

`check_end_marker` runs before training: it shows how the end text tokenises and refuses a tokenizer whose end
marker is not one real token (the seed's failure: EOS learned as text pieces, then printed and run past).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Literal

from rp_eval.chat.formats import Message, PromptFormat, end_markers, render_prompt
from rp_eval.errors import Said
from rp_eval.finetune.data import DataError

IGNORE = -100
_NEXT_USER = "\u2063NEXT\u2063"  # a user turn that can not occur in data, to see how a reply is rendered


@dataclass(frozen=True)
class EndMarker:
    text: str  # the end marker as the format writes it, e.g. "</s>" or "<|im_end|>"
    id: int | None  # the token id appended after every reply
    pieces: tuple[str, ...]  # how `text` tokenises when it is written as text
    ok: bool
    problem: str = ""  # a `Said` naming what is wrong, "" when ok

    def describe(self) -> str:
        """How the end text tokenises and the verdict, as a `Said` (English; the page says it in its language)."""
        shown = " + ".join(repr(p) for p in self.pieces) or Said("ft_marker_nothing")
        verdict = Said("ft_marker_ok") if self.ok else Said("ft_marker_refused", problem=self.problem)
        return Said("ft_marker", text=repr(self.text), id=self.id, pieces=shown, verdict=verdict)


class EndMarkerError(DataError):
    """A tokenizer with which the end of a turn would be learned as plain text."""


def end_marker(tokenizer, fmt: PromptFormat) -> EndMarker:
    """The end-of-turn marker to append, and whether it is one real (special) token."""
    tokens, _ = end_markers(fmt, tokenizer)
    vocab = tokenizer.get_vocab()
    text = next((t for t in tokens if t in vocab), "") or (tokenizer.eos_token or "")
    if not text:
        return EndMarker("", None, (), False, Said("ft_marker_no_eos"))
    end_id = vocab.get(text)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = tuple(tokenizer.convert_ids_to_tokens(ids))
    problem = ""
    if end_id is None or end_id == tokenizer.unk_token_id:
        problem = Said("ft_marker_not_in_vocab", text=repr(text))
    elif ids != [end_id]:
        problem = Said("ft_marker_splits", text=repr(text), n=len(ids), id=end_id)
    elif text not in tokenizer.all_special_tokens and text not in tokenizer.get_added_vocab():
        problem = Said("ft_marker_ordinary", text=repr(text))
    if problem:
        problem = Said("ft_marker_fix", problem=problem)
    return EndMarker(text, end_id, pieces, not problem, problem)


def check_end_marker(tokenizer, fmt: PromptFormat) -> EndMarker:
    marker = end_marker(tokenizer, fmt)
    if not marker.ok:
        raise EndMarkerError(key="ft_marker", **marker.describe().values)
    return marker


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    spans: list[tuple[int, int, bool]] = field(default_factory=list)  # (start, end, trained) token spans


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def encode(tokenizer, fmt: PromptFormat, messages: list[Message], end: EndMarker) -> Example:
    """Input ids and labels for one conversation: loss on every assistant reply and its end id."""
    ex = Example([], [])
    covered = ""  # the rendered text the ids so far stand for

    def add(ids: list[int], trained: bool) -> None:
        start = len(ex.input_ids)
        ex.input_ids += ids
        ex.labels += ids if trained else [IGNORE] * len(ids)
        if ids:
            ex.spans.append((start, len(ex.input_ids), trained))

    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = render_prompt(fmt, tokenizer, messages[:i])
        if not prompt.startswith(covered):
            raise DataError(
                f"the prompt format '{fmt.name}' renders earlier turns differently in later prompts, "
                "so multi-turn labels can not be built; split the conversations into single turns"
            )
        add(_ids(tokenizer, prompt[len(covered) :]), False)
        after = render_prompt(fmt, tokenizer, [*messages[: i + 1], {"role": "user", "content": _NEXT_USER}])
        after = after[len(prompt) :] if after.startswith(prompt) else ""
        at = after.find(m["content"])
        lead = after[:at] if at >= 0 else ""
        add(_ids(tokenizer, lead + m["content"]) + [end.id], True)
        covered = prompt + lead + m["content"]
        rest = after[at + len(m["content"]) :] if at >= 0 else ""
        cut = rest.find(end.text) if end.text else -1
        if 0 <= cut < rest.find(_NEXT_USER):  # the format writes the end marker: it is covered by the id
            covered += rest[: cut + len(end.text)]
    return ex


Overflow = Literal["drop", "truncate"]


@dataclass
class Encoded:
    examples: list[Example]
    kept: int = 0
    truncated: int = 0  # cut after the last whole assistant turn that fits (its end id kept)
    dropped: int = 0  # not even the first reply fits

    def counts(self) -> dict[str, int]:
        return {"kept": self.kept, "truncated": self.truncated, "dropped": self.dropped}

    def summary(self) -> str:
        return Said("ft_counts", kept=self.kept, truncated=self.truncated, dropped=self.dropped)


def _fit(ex: Example, max_length: int, end_id: int) -> Example | None:
    """The longest prefix within `max_length` that ends right after an end id with a label (a whole turn)."""
    for k in range(min(len(ex.input_ids), max_length), 0, -1):
        if ex.labels[k - 1] == end_id:
            return Example(ex.input_ids[:k], ex.labels[:k], [s for s in ex.spans if s[1] <= k])
    return None


def encode_all(
    tokenizer, fmt: PromptFormat, conversations: list[list[Message]], max_length: int, overflow: Overflow = "truncate"
) -> Encoded:
    end = check_end_marker(tokenizer, fmt)
    out = Encoded([])
    for messages in conversations:
        ex = encode(tokenizer, fmt, messages, end)
        if len(ex.input_ids) > max_length:
            ex = _fit(ex, max_length, end.id) if overflow == "truncate" else None
            if ex is None:
                out.dropped += 1
                continue
            out.truncated += 1
        out.kept += 1
        out.examples.append(ex)
    if not out.examples:
        raise DataError(key="err_data_none_fits", tokens=max_length, counts=out.summary())
    return out


def pad_multiple() -> int | None:
    """Batches padded to a multiple of 64 tokens on a GPU: fewer distinct shapes for its kernels. On an H100,
    conversations of 64-512 tokens trained at 5,670 real tokens/s so against 4,530 padded to the longest only."""
    import torch

    return 64 if torch.cuda.is_available() else None


def collator(tokenizer, pad_to_multiple_of: int | None = None):
    """Pads to the longest in the batch (rounded up to `pad_to_multiple_of`); labels padded with -100 by position,
    so an EOS that equals the pad id keeps its loss."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(
        tokenizer,
        label_pad_token_id=IGNORE,
        padding=True,
        pad_to_multiple_of=pad_to_multiple_of,
        return_tensors="pt",
    )


def preview_text(tokenizer, ex: Example) -> str:
    """One example as the model sees it, special tokens visible, trained spans in ⟦ ⟧ (for a terminal)."""
    parts = []
    for start, stop, trained in ex.spans:
        text = tokenizer.decode(ex.input_ids[start:stop], skip_special_tokens=False)
        parts.append(f"⟦{text}⟧" if trained else text)
    return "".join(parts)


def preview_html(tokenizer, ex: Example) -> str:
    """The same as HTML: trained spans highlighted, special tokens in a box."""
    specials = set(tokenizer.all_special_ids)
    out = []
    for start, stop, trained in ex.spans:
        pieces, run = [], []
        for tid in ex.input_ids[start:stop]:
            if tid in specials:
                if run:
                    pieces.append(html.escape(tokenizer.decode(run, skip_special_tokens=False)))
                    run = []
                token = html.escape(tokenizer.convert_ids_to_tokens(tid))
                pieces.append(f'<span class="ft-special" title="id {tid}">{token}</span>')
            else:
                run.append(tid)
        if run:
            pieces.append(html.escape(tokenizer.decode(run, skip_special_tokens=False)))
        body = "".join(pieces)
        out.append(f'<mark class="ft-trained">{body}</mark>' if trained else f'<span class="ft-prompt">{body}</span>')
    return '<pre class="ft-preview" style="white-space: pre-wrap">' + "".join(out) + "</pre>"
