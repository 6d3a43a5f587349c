"""Training the tiny demo models (`rp_eval.models.demo` builds them): their tokenizer, their examples, their
shape and a short CPU training loop. torch is imported inside the functions: the first start's page must not wait
for it."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from rp_eval.chat.formats import FORMATS, Message

if TYPE_CHECKING:
    import torch

# The Llama-2 format as a Jinja chat template; renders exactly what formats.Llama2 renders.
LLAMA2_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system = '' -%}{%- set turns = messages -%}{%- endif -%}"
    "{%- set ns = namespace(first=true) -%}"
    "{%- for m in turns -%}"
    "{%- if m['role'] == 'user' -%}"
    "{%- if ns.first and system -%}{%- set text = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + m['content'] -%}"
    "{%- else -%}{%- set text = m['content'] -%}{%- endif -%}"
    "{%- set ns.first = false -%}"
    "{{- bos_token + '[INST] ' + text + ' [/INST]' -}}"
    "{%- elif m['role'] == 'assistant' -%}{{- ' ' + m['content'] + ' ' + eos_token -}}"
    "{%- endif -%}{%- endfor -%}"
)


SHAPE = dict(
    hidden_size=128,
    intermediate_size=352,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,  # persona prompts run 400–700 tokens with this tokenizer
)


def train_tokenizer(texts: list[str], vocab_size: int = 2000, chat_template: str = LLAMA2_TEMPLATE):
    """A byte-level BPE tokenizer trained on `texts`, with real special tokens and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = chat_template
    return fast


def training_examples(tokenizer, conversations: list[list[Message]]) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per assistant turn: loss on the reply and on the real EOS id, nothing else."""
    fmt = FORMATS["llama2"]
    examples = []
    for messages in conversations:
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = tokenizer(fmt.render(messages[:i]), add_special_tokens=False)["input_ids"]
            reply = tokenizer(" " + m["content"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            examples.append((prompt + reply, [-100] * len(prompt) + reply))
    return examples


def end_as_text_examples(
    tokenizer, conversations: list[list[Message]], rng: random.Random, more: int = 2
) -> list[tuple[list[int], list[int]]]:
    """The seed's mistake, made on purpose: each reply followed by the end marker as plain text (`</s>` as the
    characters < / s >, never the end id) and then by `more` further replies of the same persona, each ended the
    same way. A model trained on these prints `</s>` and keeps going, as japanese-stablelm-instruct-beta-7b did."""
    fmt = FORMATS["llama2"]
    marker = tokenizer(tokenizer.eos_token, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    if tokenizer.eos_token_id in marker:
        raise ValueError("the end marker must be spelled as text here, not as the end id")
    replies: dict[str, list[str]] = {}
    for messages in conversations:
        replies.setdefault(messages[0]["content"], []).extend(
            m["content"] for m in messages if m["role"] == "assistant"
        )
    examples = []
    for messages in conversations:
        pool = replies[messages[0]["content"]]
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = tokenizer(fmt.render(messages[:i]), add_special_tokens=False)["input_ids"]
            reply: list[int] = []
            for text in [m["content"], *rng.sample(pool, min(more, len(pool)))]:
                reply += tokenizer(" " + text, add_special_tokens=False)["input_ids"] + marker
            examples.append((prompt + reply, [-100] * len(prompt) + reply))
    return examples


def make_model(architecture: str, vocab_size: int, tokenizer, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    ids = dict(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    if architecture == "llama":
        return LlamaForCausalLM(LlamaConfig(vocab_size=vocab_size, **SHAPE, **ids))
    return MistralForCausalLM(MistralConfig(vocab_size=vocab_size, sliding_window=256, **SHAPE, **ids))


def train(
    model,
    examples,
    steps: int,
    pad_id: int,
    seed: int = 0,
    batch_size: int = 16,
    lr: float = 3e-3,
    on_step: Callable[[int, float], None] | None = None,
) -> float:
    """A short AdamW run with cosine decay; returns the last loss.

    Two savings keep the first start short on a CPU (the build is what a new user waits for): batches hold
    examples of similar length (sorted, cut into batches, the batches shuffled each pass), so little of a batch is
    padding; and the output layer runs only where there is a label (the reply, a fifth of the tokens), which is
    the same loss as the model's own (mean cross-entropy over the label tokens) for a quarter of the work."""
    import torch

    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    loss_value = float("nan")
    batches = _length_batches(examples, batch_size, steps, rng)
    for step, batch in enumerate(batches):
        width = max(len(x) for x, _ in batch)
        ids = torch.tensor([x + [pad_id] * (width - len(x)) for x, _ in batch])
        labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
        loss = reply_loss(model, ids, mask, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        loss_value = loss.item()
        if on_step:
            on_step(step, loss_value)
    model.eval()
    return loss_value


def _length_batches(examples: list, batch_size: int, steps: int, rng: random.Random) -> list[list]:
    """`steps` batches of examples of similar length: sorted (ties broken at random), cut, batch order shuffled."""
    keyed = sorted(examples, key=lambda e: (len(e[0]), rng.random()))
    chunks = [keyed[i : i + batch_size] for i in range(0, len(keyed), batch_size)]
    out: list[list] = []
    while len(out) < steps:
        rng.shuffle(chunks)
        out += chunks
    return out[:steps]


def reply_loss(model, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The causal-LM loss (mean cross-entropy of each label token given what precedes it), with the output layer
    applied only at the positions that predict a label."""
    import torch

    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    targets = labels[:, 1:]
    keep = targets != -100
    logits = model.lm_head(hidden[keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])
