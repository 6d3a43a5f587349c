"""A fine-tuned adapter merged into its base as one full model (peft's `merge_and_unload`).

Saved as safetensors into a temporary folder, moved into `models/merged/<name>`, then registered as kind "merged"
with the adapter and its base as parents; if any step fails, the folder is removed and nothing is registered.
"""

from __future__ import annotations

from rp_eval import settings
from rp_eval.finetune.job import FinetuneError, remove_tmp
from rp_eval.finetune.memory import load_for_training
from rp_eval.models import registry


def merged_name(adapter_name: str) -> str:
    return f"{adapter_name}-merged"


def merge_full(adapter_name: str, name: str = "", model=None) -> str:
    """Merge a registered adapter into its base and register the result; returns its name.

    `model` may be the trained PeftModel still in memory (bf16 or fp32, not 4-bit): it is merged in place,
    which saves loading the base again. Otherwise (and after QLoRA, whose 4-bit weights would lose precision
    in a merge) the base is loaded unquantised and the saved adapter applied to it."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    adapter = registry.get_model(adapter_name)
    if adapter.kind != "adapter":
        raise FinetuneError(key="err_ft_not_adapter", name=adapter_name)
    base = registry.get_model(adapter.parents[0])
    name = name or merged_name(adapter_name)
    if registry.get_store().get_model(name) is not None:
        raise FinetuneError(key="err_ft_merge_name_taken", name=name)
    if model is None or getattr(model, "is_loaded_in_4bit", False):
        model = PeftModel.from_pretrained(load_for_training(base, qlora=False), adapter.source)
    merged = model.merge_and_unload()
    folder = settings.models_dir() / "merged"
    folder.mkdir(parents=True, exist_ok=True)
    final, tmp = folder / name, folder / f".{name}.tmp"
    if final.exists():
        raise FinetuneError(key="err_ft_folder_exists", name=name, path=final)
    remove_tmp(tmp)
    try:
        merged.save_pretrained(str(tmp))  # safetensors (transformers 5 writes nothing else)
        tokenizer = AutoTokenizer.from_pretrained(base.source, trust_remote_code=base.trust_remote_code)
        tokenizer.save_pretrained(str(tmp))  # the base's own tokenizer, not the training copy with a pad set
        tmp.rename(final)
    except BaseException:
        remove_tmp(tmp)
        raise
    try:
        registry.add_model(
            str(final),
            name,
            kind="merged",
            parents=[adapter.name, base.name],
            prompt_format=base.prompt_format,
            trust_remote_code=base.trust_remote_code,
            made_by={"merge_and_unload": adapter.name, **{k: v for k, v in adapter.made_by.items() if k != "settings"}},
            notes=f"{base.name} with the LoRA adapter {adapter.name} merged in",
        )
    except BaseException:
        remove_tmp(final)  # nothing registered half-done
        raise
    return name
