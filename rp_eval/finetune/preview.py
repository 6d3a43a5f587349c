"""The first training examples exactly as the model will see them, before any weights are loaded."""

from __future__ import annotations

from dataclasses import dataclass

from rp_eval.chat.formats import detect_format, get_format
from rp_eval.errors import Said
from rp_eval.finetune import data as datalib
from rp_eval.finetune import labels
from rp_eval.models import registry


@dataclass
class Preview:
    end_marker: str  # how the end text tokenises, and the verdict (a `Said`: the page words it)
    ok: bool  # False: training would be refused
    counts: str  # a `Said`
    conversations: int
    texts: list[str]  # trained spans in ⟦ ⟧, special tokens as written
    html: list[str]


def tokenizer_and_format(model_name: str):
    """The tokenizer and prompt format a registered model trains with (tokenizer files only, no weights)."""
    from transformers import AutoTokenizer

    row = registry.get_model(model_name)
    tokenizer = AutoTokenizer.from_pretrained(row.source, trust_remote_code=row.trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if row.prompt_format != "auto":
        return tokenizer, get_format(row.prompt_format)
    return tokenizer, detect_format(tokenizer, row.model_type, f"{row.name} {row.source}")


def preview(model_name: str, source: str = "", n: int = 3, max_length: int = 1024, split: str = "train") -> Preview:
    tokenizer, fmt = tokenizer_and_format(model_name)
    conversations = datalib.load_conversations(source, split)
    marker = labels.end_marker(tokenizer, fmt)
    if not marker.ok:
        return Preview(marker.describe(), False, "", len(conversations), [], [])
    encoded = labels.encode_all(tokenizer, fmt, conversations, max_length)
    shown = encoded.examples[:n]
    return Preview(
        Said("ft_format_marker", format=fmt.name, marker=marker.describe()),
        True,
        encoded.summary(),
        len(conversations),
        [labels.preview_text(tokenizer, ex) for ex in shown],
        [labels.preview_html(tokenizer, ex) for ex in shown],
    )
