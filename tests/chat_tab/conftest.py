"""Fixtures of the chat tab tests: a store in a fresh workspace and a model cache over the tiny test models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rp_eval.chat.formats import get_format
from rp_eval.models.registry import RegistryError
from rp_eval.store import get_store


class TinyCache:
    """Stands in for `model_cache()`: names map to tiny models loaded once; "broken" fails to load."""

    def __init__(self, folders: dict[str, tuple]):
        self.folders = folders
        self.loaded: dict = {}

    def get(self, name: str):
        if name not in self.folders:
            raise RegistryError(f"could not load '{name}': its files are gone")
        if name not in self.loaded:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            folder, fmt = self.folders[name]
            self.loaded[name] = SimpleNamespace(
                name=name,
                model=AutoModelForCausalLM.from_pretrained(folder).eval(),
                tokenizer=AutoTokenizer.from_pretrained(folder),
                format=get_format(fmt),
            )
        return self.loaded[name]


@pytest.fixture
def store(workspace):
    return get_store()


@pytest.fixture(scope="session")
def tiny_cache(tiny_llama, tiny_mistral):
    return TinyCache({"tiny-llama": (tiny_llama, "template"), "tiny-mistral": (tiny_mistral, "alpaca-ja")})
