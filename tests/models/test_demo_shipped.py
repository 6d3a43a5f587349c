"""The demo models shipped in prompts/demo/models: built from the current recipe (its fingerprints), intact (the
manifest's hashes), small, installed as float32 in seconds, and reproducible: a rebuild from the corpus still
shows the behaviours tests/test_demo.py asserts of the shipped build (`-m slow`: minutes on 2 CPU cores).

The two finding demos show the seed research's problems on the built models themselves: demo-llama-eos spells
its end marker `</s>` as text and keeps going (the app cuts it there), demo-mistral-long runs into the 64-token cap
mid-sentence (the app trims it), and the Fine-tune tab's default run teaches demo-llama-eos to stop."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from rp_eval.models import demo, demo_ship
from tests.conftest import use_workspace
from tests.test_demo import JAPANESE, check_demo_behaviour


def test_the_shipped_build_is_of_the_current_recipe_and_intact():
    folder = demo_ship.SHIPPED
    assert (folder / "READY").read_text().strip() == demo._fingerprint(), (
        "the corpus or the demo recipe changed: rebuild the shipped models with python -m rp_eval.models.demo_ship"
    )
    assert (folder / demo.FINDINGS_READY).read_text().strip() == demo._findings_fingerprint(), (
        "the finding demos' data or recipe changed: python -m rp_eval.models.demo_ship --findings-only"
    )
    assert demo_ship.shipped_ready()
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert set(manifest) == {spec.name for spec in demo.ALL_DEMOS}
    total = 0
    for name, files in manifest.items():
        for file, digest in files.items():
            data = (folder / name / file).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{name}/{file} differs from its manifest"
            assert len(data) < 4_000_000, f"{name}/{file} is {len(data)} bytes: keep each shipped file small"
            total += len(data)
    assert total < 16_000_000, total


def test_a_stale_shipped_build_is_not_installed(tmp_path, monkeypatch):
    stale = tmp_path / "shipped"
    stale.mkdir()
    (stale / "READY").write_text("0000000000000000")
    assert not demo_ship.shipped_ready(stale)
    assert not demo_ship.shipped_ready(tmp_path / "missing")


def test_install_writes_float32_copies_of_the_shipped_weights(workspace):
    start = time.perf_counter()
    demo.build_demo_models()
    seconds = time.perf_counter() - start
    assert demo.demos_ready() and demo.build_info()["shipped"] is True
    for spec in demo.ALL_DEMOS:
        shipped = load_file(demo_ship.SHIPPED / spec.name / demo_ship.WEIGHTS)
        installed = load_file(demo.demo_dir() / spec.name / demo_ship.WEIGHTS)
        assert set(shipped) == set(installed)
        for key, value in installed.items():
            assert value.dtype == np.float32 and np.array_equal(value, shipped[key].astype(np.float32)), key
    assert seconds < 20, seconds  # a copy, not a training run


@pytest.mark.slow
def test_a_rebuild_from_the_corpus_shows_the_shipped_behaviours(tmp_path, monkeypatch):
    monkeypatch.setenv("RP_EVAL_DEMO_TRAIN", "1")
    use_workspace(tmp_path / "workspace", monkeypatch)
    demo.build_demo_models()
    assert "shipped" not in demo.build_info()
    check_demo_behaviour()
    check_finding_behaviour()
    check_finetune_learns_to_stop()


def test_a_workspace_with_only_the_seed_demos_gets_the_finding_demos_added(workspace):
    """A workspace built before the finding demos existed keeps its seed demos and gains the two new ones."""
    tmp = demo._fresh_tmp()
    demo_ship.install(tmp, specs=demo.DEMOS)
    demo._put_in_place(tmp)
    seed_weights = (demo.demo_dir() / "demo-llama-a" / demo_ship.WEIGHTS).stat().st_mtime_ns
    assert not demo.demos_ready()
    names = demo.build_demo_models()
    assert demo.demos_ready() and set(names) == {s.name for s in demo.ALL_DEMOS}
    assert (demo.demo_dir() / "demo-llama-a" / demo_ship.WEIGHTS).stat().st_mtime_ns == seed_weights
    assert json.loads((demo.demo_dir() / demo.FINDINGS_BUILD).read_text())["shipped"] is True


def test_the_finding_demos_show_the_seed_findings(demo_workspace, monkeypatch):
    use_workspace(demo_workspace, monkeypatch)
    check_finding_behaviour()


def test_the_merge_matrix_keeps_the_seeds_verdicts_with_the_finding_demos(demo_workspace, monkeypatch):
    """Llama-2 × Llama-2 and Mistral × Mistral merge, Llama × Mistral does not (seed finding 1), new demos included."""
    from rp_eval.merge import compat

    use_workspace(demo_workspace, monkeypatch)
    names = ["demo-llama-a", "demo-llama-b", "demo-llama-eos", "demo-mistral", "demo-mistral-long"]
    table = compat.matrix(names).set_index("model")
    for a in names:
        for b in names:
            if a == b:
                continue
            if ("llama" in a) == ("llama" in b):
                assert table.loc[a, b].startswith("all methods"), (a, b, table.loc[a, b])
            else:
                assert "LlamaForCausalLM vs MistralForCausalLM" in table.loc[a, b] or (
                    "MistralForCausalLM vs LlamaForCausalLM" in table.loc[a, b]
                ), (a, b, table.loc[a, b])


def test_the_fine_tune_tab_and_cli_take_the_learning_rate_demo_llama_eos_suggests(demo_workspace, monkeypatch):
    import argparse

    from rp_eval.finetune import cli
    from rp_eval.ui import finetune_tab

    use_workspace(demo_workspace, monkeypatch)
    update, note = finetune_tab._base_chosen("demo-llama-eos", 2e-4)
    assert update["value"] == 1e-2 and "0.01" in note and "demo-llama-eos" in note
    update, note = finetune_tab._base_chosen("demo-llama-a", 1e-2)  # another base: the default comes back
    assert update["value"] == 2e-4 and note == ""
    update, note = finetune_tab._base_chosen("demo-llama-a", 5e-4)  # a rate the person typed stays
    assert "value" not in update and note == ""
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["finetune", "run", "--base", "demo-llama-eos"])
    assert cli._settings(args).learning_rate == 1e-2
    args = parser.parse_args(["finetune", "run", "--base", "demo-llama-eos", "--learning-rate", "3e-4"])
    assert cli._settings(args).learning_rate == 3e-4
    args = parser.parse_args(["finetune", "run", "--base", "demo-llama-a"])
    assert cli._settings(args).learning_rate == 2e-4


@pytest.mark.slow
def test_the_fine_tune_tabs_default_run_teaches_demo_llama_eos_to_stop(demo_workspace, monkeypatch):
    use_workspace(demo_workspace, monkeypatch)
    check_finetune_learns_to_stop()


def _prompts() -> list[list[dict]]:
    """One opening per demo character and eight prompts of the evaluation task (personas the demos never saw)."""
    from rp_eval.finetune.stopcheck import task_prompts

    corpus = demo.load_corpus()
    return [[{"role": "system", "content": c["system"]}, c["messages"][0]] for c in corpus[::28]] + task_prompts(8)


def check_finding_behaviour() -> None:
    """What the finding demos in the current workspace must show (the shipped build and a rebuild alike)."""
    from rp_eval.chat.formats import render_prompt
    from rp_eval.chat.generate import GenerationSettings, generate_batch
    from rp_eval.models.loading import ModelCache

    cache = ModelCache()
    prompts = _prompts()
    greedy64 = GenerationSettings(temperature=0, max_new_tokens=64)

    # demo-llama-eos writes the end marker as text: the raw reply holds `</s>` (never the end id), the reply shown
    # is cut before it
    eos = cache.get("demo-llama-eos")
    results = generate_batch(eos.model, eos.tokenizer, eos.format, prompts, greedy64)
    spelled = [r for r in results if r.finish_reason == "stop_string" and r.stop == "</s>"]
    # the shipped build: 16 of 16; a rebuild on another machine 14 of 16 (CPU training is not bit-repeatable)
    assert len(spelled) >= 0.75 * len(results), [(r.finish_reason, r.raw_text) for r in results]
    for r in spelled:
        assert "</s>" in r.raw_text and "</s>" not in r.text and JAPANESE.search(r.text), r
        assert eos.tokenizer.eos_token_id not in r.token_ids  # the marker as characters, not the end id
    # ...and keeps going: a plain transformers generate() that stops only on the end id (what the seed ran) goes
    # past the marker into more text until the cap
    text = render_prompt(eos.format, eos.tokenizer, prompts[0])
    ids = eos.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = eos.model.generate(ids, max_new_tokens=64, do_sample=False, eos_token_id=eos.tokenizer.eos_token_id)
    new = out[0, ids.shape[1] :].tolist()
    plain = eos.tokenizer.decode(new)
    assert len(new) == 64 and eos.tokenizer.eos_token_id not in new, plain
    assert "</s>" in plain and JAPANESE.search(plain.split("</s>", 1)[1]), plain

    # demo-mistral-long runs past 64 tokens: cut mid-sentence at the cap, trimmed to its last whole sentence
    long = cache.get("demo-mistral-long")
    results = generate_batch(long.model, long.tokenizer, long.format, prompts, greedy64)
    capped = [r for r in results if r.finish_reason.startswith("length") and r.cut_mid_sentence]
    assert len(capped) >= 0.75 * len(results), [(r.finish_reason, r.new_tokens, r.raw_text) for r in results]
    for r in capped:
        assert r.new_tokens == 64
    trimmed = [r for r in capped if r.finish_reason == "length_trimmed"]
    assert len(trimmed) >= len(capped) / 2
    for r in trimmed:
        assert len(r.text) < len(r.raw_text.strip()) and r.text[-1] in "。！？」』…!?", (r.text, r.raw_text)


def check_finetune_learns_to_stop() -> None:
    """The Fine-tune tab's default run on demo-llama-eos (its suggested learning rate, everything else the
    defaults: 40 steps on prompts/finetune, the stop check on 32 prompts of the evaluation task): the loss falls and
    the share of replies that end on the end id goes from low to high."""
    from rp_eval.finetune import job
    from rp_eval.finetune.config import FinetuneSettings

    settings = FinetuneSettings(base_model="demo-llama-eos", **demo.suggested_finetune("demo-llama-eos"))
    assert settings.learning_rate == 1e-2 and settings.stop_check_prompts == 32
    last = job.wait(job.start(settings))
    assert last.status == "done", last.log[-5:]
    losses = [p["loss"] for p in last.losses if "loss" in p]  # the training loss at every step
    assert len(losses) >= 30, last.losses[:3]
    assert np.mean(losses[-8:]) < np.mean(losses[:8]) - 0.25, losses
    check = last.metrics["stop_check"]
    before, after = check["base"]["natural_stop_rate"], check["adapter"]["natural_stop_rate"]
    assert before <= 0.25 and check["base"]["end_text_rate"] >= 0.7, check
    # measured: 3% before; 50%, 66%, 66% and 78% after in four runs (CPU training is not bit-for-bit repeatable)
    assert after >= 0.4 and after - before >= 0.3, check
    # and the adapter, as the Chat tab runs it, ends its greedy replies on the end id where the base spelled </s>
    from rp_eval.chat.generate import GenerationSettings, generate_batch
    from rp_eval.finetune.stopcheck import task_prompts
    from rp_eval.models.loading import ModelCache

    adapter = ModelCache().get(last.adapter)
    results = generate_batch(
        adapter.model,
        adapter.tokenizer,
        adapter.format,
        task_prompts(16, seed=1),
        GenerationSettings(temperature=0, max_new_tokens=128),
    )
    assert sum(r.finish_reason == "eos" for r in results) >= 10, [(r.finish_reason, r.raw_text) for r in results]
