"""Prompt formats: how a conversation becomes the text a model continues, and what ends a turn.

A registry you can read in one screen (`FORMATS`). Each format renders a list of messages and names
- `end_tokens`: token texts that end an assistant turn (resolved to ids when the vocabulary has them),
- `end_strings`: literal strings that mean the model has finished or started the next turn; generation
  stops there even when the model spells them as several ordinary tokens.
The tokenizer's own `chat_template` is used when it has one (format "template").

Every system message is kept (`fold_system`): the leading ones are merged, in order, into one system prompt;
a later one stays at its place where the format takes system turns anywhere (ChatML, a template that shows it)
and is otherwise folded into the next user turn. A conversation whose last message is the assistant's is
"continue it": the prompt ends inside that message (no end of turn after it), so the reply is its continuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypedDict


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class PromptFormat:
    name: str
    title: str
    end_tokens: tuple[str, ...] = ()
    end_strings: tuple[str, ...] = ()
    used_by: str = ""

    def render(self, messages: list[Message], bos: str = "<s>", eos: str = "</s>") -> str:
        """The prompt for the next assistant turn: every message, then the opening of the reply."""
        raise NotImplementedError


def merge_leading_system(messages: list[Message]) -> list[Message]:
    """The leading system messages merged, in order, into one (a blank line between; empty ones carry nothing)."""
    i = 0
    while i < len(messages) and messages[i]["role"] == "system":
        i += 1
    if i <= 1:
        return list(messages)
    text = "\n\n".join(m["content"] for m in messages[:i] if m["content"])
    return [Message(role="system", content=text), *messages[i:]]


def fold_system(messages: list[Message]) -> list[Message]:
    """Every system message kept for a format that takes one system prompt at the start: the leading ones merged
    into it; a later one put before the next user message's text (after the last user message's text when no
    user message follows it)."""
    merged = merge_leading_system(messages)
    out: list[Message] = merged[:1] if merged and merged[0]["role"] == "system" else []
    pending: list[str] = []
    for m in merged[len(out) :]:
        if m["role"] == "system":
            if m["content"]:
                pending.append(m["content"])
        elif m["role"] == "user" and pending:
            out.append(Message(role="user", content="\n\n".join([*pending, m["content"]])))
            pending = []
        else:
            out.append(dict(m))
    if pending:
        last_user = max((i for i, m in enumerate(out) if m["role"] == "user"), default=-1)
        if last_user < 0:  # no user turn to carry them: they stay system messages (the caller refuses the chat)
            return [*out, *(Message(role="system", content=t) for t in pending)]
        text = "\n\n".join([out[last_user]["content"], *pending])
        out[last_user] = Message(role="user", content=text)
    return out


def continues(messages: list[Message]) -> bool:
    """The last message is the assistant's: the reply continues it."""
    return bool(messages) and messages[-1]["role"] == "assistant"


def _split_system(messages: list[Message]) -> tuple[str, list[Message]]:
    messages = fold_system(messages)
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], list(messages[1:])
    return "", list(messages)


class Llama2(PromptFormat):
    def render(self, messages: list[Message], bos: str = "<s>", eos: str = "</s>") -> str:
        system, turns = _split_system(messages)
        out = []
        first = True
        for i, m in enumerate(turns):
            if m["role"] == "assistant" and i == len(turns) - 1:  # continue it: no end of turn
                out.append(f" {m['content']}")
            elif m["role"] == "user":
                text = m["content"]
                if first and system:
                    text = f"<<SYS>>\n{system}\n<</SYS>>\n\n{text}"
                out.append(f"{bos}[INST] {text} [/INST]")
                first = False
            elif m["role"] == "assistant":
                out.append(f" {m['content']} {eos}")
        return "".join(out)


ALPACA_JA_PREFACE = "以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。"


class AlpacaJa(PromptFormat):
    def render(self, messages: list[Message], bos: str = "<s>", eos: str = "</s>") -> str:
        system, turns = _split_system(messages)
        out = [f"{bos}{system or ALPACA_JA_PREFACE}"]
        for i, m in enumerate(turns):
            if m["role"] == "assistant" and i == len(turns) - 1:  # continue it: no end of turn
                out.append(m["content"])
            elif m["role"] == "user":
                out.append(f"\n\n### 指示: \n{m['content']}\n\n### 応答: \n")
            elif m["role"] == "assistant":
                out.append(f"{m['content']}{eos}")
        return "".join(out)


class ChatML(PromptFormat):
    def render(self, messages: list[Message], bos: str = "<s>", eos: str = "</s>") -> str:
        messages = merge_leading_system(messages)  # a later system turn stays where it is: ChatML takes it there
        out = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
        if continues(messages):
            out[-1] = f"<|im_start|>assistant\n{messages[-1]['content']}"
        else:
            out.append("<|im_start|>assistant\n")
        return "".join(out)


class Template(PromptFormat):
    """The tokenizer's own chat template; rendering goes through `tokenizer.apply_chat_template`."""

    def render(self, messages: list[Message], bos: str = "<s>", eos: str = "</s>") -> str:
        raise TypeError("the 'template' format is rendered by the tokenizer: use render_prompt()")


FORMATS: dict[str, PromptFormat] = {
    f.name: f
    for f in [
        Template("template", "The tokenizer's own chat template"),
        Llama2(
            "llama2",
            "Llama-2 [INST] <<SYS>>",
            end_strings=("[INST]", "[/INST]", "<<SYS>>"),
            used_by="ELYZA-japanese-Llama-2-7b-instruct, japanese-stablelm-instruct-beta-7b",
        ),
        AlpacaJa(
            "alpaca-ja",
            "Japanese Alpaca ### 指示: / ### 応答:",
            end_strings=("### 指示", "### 入力", "### 応答", "\n\n###"),
            used_by="japanese-stablelm-instruct-gamma-7b",
        ),
        ChatML(
            "chatml",
            "ChatML <|im_start|>",
            end_tokens=("<|im_end|>",),
            end_strings=("<|im_end|>", "<|im_start|>"),
            used_by="many Mistral and Qwen fine-tunes",
        ),
    ]
}

# Markers that, found in a chat template, tell what ends a turn in it.
_TEMPLATE_END_MARKERS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "[INST]")


def get_format(name: str) -> PromptFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown prompt format {name!r}; known: {', '.join(FORMATS)}") from None


def detect_format(tokenizer, model_type: str = "", name_hint: str = "") -> PromptFormat:
    """The tokenizer's template when it has one, else a built-in format guessed from the model."""
    if getattr(tokenizer, "chat_template", None):
        return FORMATS["template"]
    hint = name_hint.lower()
    if "instruct-gamma" in hint or "alpaca" in hint:
        return FORMATS["alpaca-ja"]
    if "chatml" in hint or "qwen" in hint or model_type in ("qwen2", "qwen3"):
        return FORMATS["chatml"]
    return FORMATS["llama2"] if model_type in ("llama", "mistral", "") else FORMATS["chatml"]


def end_markers(fmt: PromptFormat, tokenizer) -> tuple[list[str], list[str]]:
    """(end token texts, end strings) for a format, including what the tokenizer's template uses."""
    tokens, strings = list(fmt.end_tokens), list(fmt.end_strings)
    if fmt.name == "template":
        template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
        for marker in _TEMPLATE_END_MARKERS:
            if marker in template:
                strings.append(marker)
                if marker.startswith("<"):
                    tokens.append(marker)
    return tokens, strings


def render_prompt(fmt: PromptFormat, tokenizer, messages: list[Message]) -> str:
    """The prompt text for the next assistant turn, ready to tokenise without adding special tokens."""
    if fmt.name == "template":
        return _render_template(tokenizer, messages)
    return fmt.render(messages, bos=tokenizer.bos_token or "", eos=tokenizer.eos_token or "")


def _apply_template(tokenizer, messages: list[Message]) -> str:
    if continues(messages):
        return tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _render_template(tokenizer, messages: list[Message]) -> str:
    """The tokenizer's template on the messages as they are (leading system messages merged) when its text shows
    every system message; else with later system messages folded into user turns; else with all of them folded
    (a template that takes no system turn). A template's own refusal of the last try is raised."""
    merged = merge_leading_system(messages)
    systems = [m["content"] for m in merged if m["role"] == "system" and m["content"].strip()]
    folded = fold_system(merged)
    if folded and folded[0]["role"] == "system":
        none = [Message(role="user", content=f"{folded[0]['content']}\n\n{folded[1]['content']}"), *folded[2:]]
        none = none if len(folded) > 1 and folded[1]["role"] == "user" else folded
    else:
        none = folded
    tries = [merged, folded, none] if systems else [merged]
    for i, candidate in enumerate(tries):
        last = i == len(tries) - 1
        try:
            text = _apply_template(tokenizer, candidate)
        except Exception:  # noqa: BLE001 - a template's raise_exception (e.g. "system role not supported")
            if last:
                raise
            continue
        if last or all(s in text for s in systems):
            return text
    raise AssertionError("unreachable")


def speaker_tags(names: list[str]) -> list[str]:
    """Stop strings for a conversation whose other speakers have names: `ユーザー:` style tags at a line start."""
    tags = []
    for name in names:
        name = re.sub(r"\s+", " ", name).strip()
        if name:
            tags += [f"\n{name}:", f"\n{name}："]
    return tags
