"""A hub id given with no network is refused within seconds, with a hint in the page's language (offline mode, or
a folder), by `models add` and by the merge check alike. The hub is pointed at TEST-NET-1 (192.0.2.1, RFC 5737),
which no packet reaches; before, huggingface_hub retried for about a minute."""

from __future__ import annotations

import time

import pytest

from rp_eval.merge import compat
from rp_eval.models import hub, registry
from rp_eval.ui.locale import error_text, in_language

SOURCE = "elyza/ELYZA-japanese-Llama-2-7b-instruct"


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://192.0.2.1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    hub._last.clear()
    yield
    hub._last.clear()


@pytest.mark.parametrize("check", ["models add", "merge check"])
def test_a_hub_id_with_no_network_fails_in_seconds_with_a_hint(no_network, workspace, check):
    started = time.monotonic()
    with pytest.raises((registry.RegistryError, compat.CompatibilityError)) as caught:
        if check == "models add":
            registry.inspect_source(SOURCE)
        else:
            compat.read_shape(SOURCE)
    took = time.monotonic() - started
    assert took < 5, took
    assert caught.value.key == "err_hub_unreachable"
    ja = in_language("ja", error_text, caught.value)
    assert SOURCE in ja and "HF_HUB_OFFLINE=1" in ja and "モデルのフォルダを指定してください" in ja, ja
    assert "did not answer within 3 s" in str(caught.value)


def test_offline_mode_skips_the_probe(monkeypatch, workspace):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://192.0.2.1")
    hub._last.clear()
    assert hub.hub_kwargs(SOURCE) == {}  # transformers reads the cache only; no connection is tried
    assert hub._last == {}
    with pytest.raises(registry.RegistryError) as caught:
        registry.inspect_source(SOURCE)
    assert caught.value.key == "err_registry_offline"
