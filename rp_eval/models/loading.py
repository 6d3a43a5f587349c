"""Loading registered models, and an in-process cache with a memory budget.

dtype and device: bf16 on a GPU that supports it (fp16 otherwise), fp32 on the CPU. 8/4-bit loading through
bitsandbytes when asked and a GPU is present. Adapters load on top of their base. Safetensors are preferred;
`trust_remote_code` only where the model's registry entry turns it on.
"""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from rp_eval import settings
from rp_eval.chat.formats import PromptFormat, detect_format, get_format
from rp_eval.chat.service import GenerationService, own
from rp_eval.models.registry import RegistryError, get_model, inspect_source
from rp_eval.store import ModelRow

Quantize = Literal["none", "8bit", "4bit"]


@dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module
    tokenizer: object
    format: PromptFormat
    bytes: int
    row: ModelRow
    service: GenerationService | None = None  # the model's generation service: every request goes through it

    def __post_init__(self) -> None:
        if self.service is None:
            self.service = GenerationService(self.model)
        own(self.model, self.service)


def pick_device() -> tuple[str, torch.dtype]:
    wanted = settings.config().device
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RegistryError("the device setting says cuda, but this machine has no CUDA GPU")
    if wanted != "cpu" and torch.cuda.is_available():
        return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return "cpu", torch.float32


def _weights_kwargs(folder: str, trust_remote_code: bool, quantize: Quantize) -> dict:
    device, dtype = pick_device()
    kwargs: dict = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    path = Path(folder)
    if path.is_dir() and any(path.glob("*.safetensors")):
        kwargs["use_safetensors"] = True
    if quantize != "none":
        if device != "cuda":
            raise RegistryError(f"{quantize} loading needs a CUDA GPU (bitsandbytes); this machine has none")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_8bit=quantize == "8bit", load_in_4bit=quantize == "4bit", bnb_4bit_compute_dtype=dtype
        )
        kwargs["device_map"] = {"": 0}
    return kwargs


def load(row: ModelRow, quantize: Quantize = "none") -> LoadedModel:
    """Load a registered model (an adapter together with its base). Raises RegistryError when it can't."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device, _ = pick_device()
    base_row = get_model(row.parents[0]) if row.kind == "adapter" else row
    if row.kind == "adapter" and base_row.kind == "adapter":
        raise RegistryError(f"'{row.name}' is an adapter on another adapter ('{base_row.name}'); merge that one first")
    for r in {row.name: row, base_row.name: base_row}.values():
        if r.source.startswith("/") and not Path(r.source).exists():
            raise RegistryError(f"the files of '{r.name}' are gone: '{r.source}' does not exist")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            base_row.source, **_weights_kwargs(base_row.source, base_row.trust_remote_code, quantize)
        )
        if row.kind == "adapter":
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, row.source)
        tokenizer_source = row.source if (Path(row.source) / "tokenizer_config.json").exists() else base_row.source
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, trust_remote_code=base_row.trust_remote_code)
    except (OSError, ValueError) as err:
        raise RegistryError(f"could not load '{row.name}': {str(err).splitlines()[0]}") from err
    if quantize == "none":
        model = model.to(device)
    model.eval()
    service = GenerationService(model)
    if device == "cuda":  # compile and capture every graph now: no request captures or compiles later
        service.warm_up()
    fmt = (
        get_format(row.prompt_format)
        if row.prompt_format != "auto"
        else detect_format(tokenizer, base_row.model_type, f"{row.name} {base_row.source}")
    )
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    return LoadedModel(row.name, model, tokenizer, fmt, size, row, service)


def transient_row(source: str, prompt_format: str = "auto", trust_remote_code: bool = False) -> ModelRow:
    """A row for a model that is used without being registered (e.g. `rp_eval generate --model PATH`)."""
    info = inspect_source(source, trust_remote_code)
    if info.is_adapter:
        raise RegistryError("an adapter must be registered (with its base) before it can be used")
    return ModelRow(
        name=source,
        kind="base",
        source=info.source,
        parents=[],
        made_by={},
        architecture=info.architecture,
        model_type=info.model_type,
        parameters=info.parameters,
        size_bytes=info.size_bytes,
        prompt_format=prompt_format,
        trust_remote_code=trust_remote_code,
    )


def default_budget() -> int:
    """Bytes of weights to keep loaded: the cache_gb setting, else 85% of GPU memory or half of RAM."""
    if settings.config().cache_gb:
        return int(settings.config().cache_gb * 2**30)
    if torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(0).total_memory * 0.85)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.5)


class ModelCache:
    """Loaded models by name, least recently used evicted first when the next one would exceed the budget."""

    def __init__(self, budget_bytes: int | None = None, loader=load) -> None:
        self.budget = budget_bytes if budget_bytes is not None else default_budget()
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._loader = loader
        self._lock = threading.RLock()
        self.loads = 0
        self.evictions: list[str] = []

    def names(self) -> list[str]:
        return list(self._loaded)

    def used(self) -> int:
        return sum(m.bytes for m in self._loaded.values())

    def get(self, name_or_row: str | ModelRow, quantize: Quantize = "none") -> LoadedModel:
        row = name_or_row if isinstance(name_or_row, ModelRow) else get_model(name_or_row)
        key = f"{row.name}|{quantize}"
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            expected = _expected_bytes(row)
            self._make_room(expected)
            loaded = self._loader(row, quantize)
            self.loads += 1
            self._loaded[key] = loaded
            self._make_room(0)
            return loaded

    def drop(self, name: str) -> None:
        with self._lock:
            for key in [k for k in self._loaded if k.split("|")[0] == name]:
                self._loaded.pop(key).service.close()  # its requests end with a message, new ones are refused
            _free()

    def _make_room(self, incoming: int) -> None:
        while self._loaded and self.used() + incoming > self.budget and len(self._loaded) > (0 if incoming else 1):
            key, _ = self._loaded.popitem(last=False)  # requests under way finish; their service then ends
            self.evictions.append(key.split("|")[0])
            _free()


def _expected_bytes(row: ModelRow) -> int:
    _, dtype = pick_device()
    if row.parameters:
        return row.parameters * torch.tensor([], dtype=dtype).element_size()
    return row.size_bytes


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


_cache: ModelCache | None = None


def model_cache() -> ModelCache:
    """The process-wide cache that the UI, the CLI and the evaluation share."""
    global _cache
    if _cache is None:
        _cache = ModelCache()
    return _cache
