"""Property tests (Hypothesis): the stopping and trimming rules, the streaming path, and the recipe and genome
parsers, on inputs nobody wrote by hand."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rp_eval.chat import text as textrules
from rp_eval.chat.formats import FORMATS
from rp_eval.chat.generate import GenerationResult, GenerationSettings, stop_rules, stream
from rp_eval.errors import RpEvalError
from rp_eval.evolve.genome import Genome, parse_genome
from rp_eval.merge import recipe
from tests.chat.scripted import ScriptedModel, byte_tokens

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FFFD = textrules.REPLACEMENT
STOPS = ["</s>", "[INST]", "ユーザー:", "\nUser:", "### 指示", "<|im_end|>"]
# text near the rules' edges: sentence ends, closers, whitespace, pieces of stop strings, half characters
ALPHABET = st.sampled_from(list("あいう。、！？!?.…」』) \n\t3a<>/s[]INSTユーザー:#指示|") + [FFFD, "x"])
edgy_text = st.lists(st.one_of(ALPHABET, st.sampled_from(STOPS), st.text(max_size=3)), max_size=30).map("".join)


# -- the pure rules --------------------------------------------------------------------------------------------


@FAST
@given(edgy_text)
@example("version 3.5 is")
@example("「はい」。\ufffd")
def test_trimming_only_removes_text_and_ends_on_a_sentence(text):
    trimmed = textrules.trim_to_sentence(text)
    assert text.startswith(trimmed)
    assert trimmed == "" or textrules.ends_sentence(trimmed)


@FAST
@given(edgy_text, st.lists(st.sampled_from(STOPS), max_size=4))
def test_the_earliest_stop_is_found_and_nothing_before_it_is_a_stop(text, stops):
    cut = textrules.find_stop(text, stops)
    if cut is None:
        assert not any(s in text for s in stops)
    else:
        assert any(text[cut:].startswith(s) for s in stops)
        assert not any(s in text[: cut + len(s) - 1] for s in stops if text.find(s) != cut)


@FAST
@given(edgy_text, st.lists(st.sampled_from(STOPS), max_size=4))
def test_what_may_be_shown_never_starts_a_stop_and_has_no_half_characters(text, stops):
    visible = textrules.showable(text)
    shown = visible[: len(visible) - textrules.held_back(visible, stops)]
    assert FFFD not in shown and FFFD not in textrules.clean_reply(text)
    if textrules.find_stop(visible, stops) is None:
        # the held-back tail is exactly what could still grow into a stop string (or trailing whitespace)
        assert not any(
            visible.endswith(s[:k]) for s in stops for k in range(1, len(s)) if len(shown) < len(visible) - k
        )


@FAST
@given(edgy_text, st.lists(st.sampled_from(STOPS), min_size=1, max_size=4))
@example("はい。</\ufffds>続き", ["</s>"])
def test_a_stop_hidden_by_a_stray_byte_is_found_once_broken_bytes_are_dropped(text, stops):
    # the decode loop must search stops in drop_broken(text): what is shown drops the U+FFFD and joins the halves
    cut = textrules.find_stop(textrules.drop_broken(text), stops)
    visible = textrules.drop_broken(text)[:cut]
    for shown in (textrules.showable(visible), textrules.clean_reply(visible)):
        assert not any(s in shown for s in stops) and FFFD not in shown
    assert textrules.drop_broken(text).startswith(textrules.drop_broken(text).rstrip(FFFD))


def test_stream_stops_at_a_stop_string_with_a_stray_byte_inside(tokenizer):
    ids = byte_tokens(tokenizer, "はい。</") + byte_tokens(tokenizer, "あ")[:1] + byte_tokens(tokenizer, "s>続き")
    model = ScriptedModel([ids], len(tokenizer), tokenizer.eos_token_id)
    greedy = GenerationSettings(temperature=0, max_new_tokens=len(ids), trim_to_sentence=False)
    *deltas, result = stream(model, tokenizer, FORMATS["llama2"], [{"role": "user", "content": "やあ"}], greedy)
    assert "</s>" not in "".join(deltas) and result.text == "はい。" and result.finish_reason == "stop_string"


# -- the streaming path, driven by a scripted token stream -----------------------------------------------------

PIECES = ["はい。", "そうですね", "！", "……", "」", " ", "\n", "3.5", "a", "寒い", "?", "。", *STOPS, "</", "s>", "[IN", "ST]"]  # fmt: skip


def _pieces(tokenizer):
    """Token-level building blocks: whole pieces (each spelt byte by byte, so one character may take several
    tokens), single raw bytes (half characters), ordinary vocabulary tokens and the end id."""
    spelt = st.sampled_from(PIECES).map(lambda p: byte_tokens(tokenizer, p))
    half = st.sampled_from(["あ", "。", "ー"]).map(lambda c: byte_tokens(tokenizer, c)[:1])
    vocab = st.integers(0, len(tokenizer) - 1).map(lambda i: [i])
    eos = st.just([tokenizer.eos_token_id])
    return st.one_of(spelt, spelt, half, vocab, eos)


def _expected_untrimmed(ids, tokenizer, rules, cap):
    """An independent run of the rules: the reply before trimming, from the same ids."""
    for n in range(1, min(len(ids), cap) + 1):
        if ids[n - 1] in rules.end_ids:
            return tokenizer.decode(ids[: n - 1], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        text = tokenizer.decode(ids[:n], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        cut = textrules.find_stop(text, list(rules.stop_strings))
        if cut is not None:
            return text[:cut]
    return text


@pytest.fixture(scope="module")
def pieces(tokenizer):
    return _pieces(tokenizer)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_any_token_stream_streams_nothing_past_a_stop_and_no_half_characters(tokenizer, pieces, data):
    chunks = data.draw(st.lists(pieces, min_size=1, max_size=12))
    ids = [i for chunk in chunks for i in chunk]
    cap = data.draw(st.integers(1, len(ids) + 2))
    model = ScriptedModel([ids], len(tokenizer), tokenizer.eos_token_id)
    settings_ = GenerationSettings(temperature=0, max_new_tokens=cap, trim_to_sentence=data.draw(st.booleans()))
    out = list(stream(model, tokenizer, FORMATS["llama2"], [{"role": "user", "content": "やあ"}], settings_))
    *deltas, result = out
    assert isinstance(result, GenerationResult)
    rules = stop_rules(tokenizer, model, FORMATS["llama2"])
    emitted = ids + [ids[-1]] * (cap - len(ids))  # the scripted model repeats its last token
    untrimmed = textrules.clean_reply(_expected_untrimmed(emitted, tokenizer, rules, cap))
    streamed = "".join(deltas)
    for shown in (streamed, result.text):
        assert FFFD not in shown
        assert not any(s in shown for s in rules.stop_strings), (shown, ids)
    assert untrimmed.startswith(result.text)  # trimming never adds text
    assert untrimmed.startswith(streamed[: len(untrimmed)])  # nothing streamed that the stop rules cut
    assert streamed.startswith(result.text) or result.text.startswith(streamed)
    assert result.new_tokens <= cap


# -- the recipe and genome parsers: a clear error or a valid object, never another exception ------------------

KEYS = [
    "merge_method", "models", "slices", "base_model", "parameters", "dtype", "tokenizer_source", "model",
    "layer_range", "sources", "weight", "density", "t", "normalize", "name", "method", "layer_granularity",
    "split_attention_mlp", "chat_template", "tokenizer", "x",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["ties", "dare_ties", "slerp", "linear", "task_arithmetic", "bfloat16", "demo-llama-a", "a/b"]),
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), SCALARS), inner, max_size=5)
    ),
    max_leaves=25,
)
YAML_TEXT = st.one_of(
    st.text(max_size=200),
    STRUCTURES.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
    st.lists(st.sampled_from(["merge_method: ties\n", "models:\n", "  - model: a\n", "  - {model: b, parameters: ",
                              "{weight: [1, 2]}}\n", "base_model: a\n", "slices: []\n", "- x\n", ": :\n", "\t", "&a [*a]\n",
                              "!!python/object/apply:os.system ['true']\n", "!!binary AAAA\n", "%YAML 1.1\n", "\x00"]),
             max_size=8).map("".join),
)  # fmt: skip


@FAST
@given(YAML_TEXT)
@example("\x00")
@example("[" * 2000)
@example("merge_method: ties\nmodels: [{model: a}, {model: b}]\nbase_model: a\n")
def test_any_recipe_text_gives_a_recipe_or_a_clear_error(text):
    try:
        config = recipe.parse(text)
    except RpEvalError as err:
        assert str(err)
        return
    assert config.merge_method


@FAST
@given(STRUCTURES)
def test_any_recipe_structure_gives_a_recipe_or_a_clear_error(data):
    try:
        recipe.problems(data if isinstance(data, dict) else {"models": data}, check_shapes=False)
        recipe.parse(yaml.safe_dump(data))
    except RpEvalError as err:
        assert str(err)


@FAST
@given(st.one_of(YAML_TEXT, STRUCTURES.map(lambda v: yaml.safe_dump({"models": v, "base_model": "a", "name": "g"}))))
@example("\x00")
@example("[" * 2000)
@example("name: ../../escape\nmodels: [b]\nbase_model: a\n")
def test_any_genome_text_gives_a_genome_or_a_clear_error(text):
    try:
        genome = parse_genome(text)
    except RpEvalError as err:
        assert str(err)
        return
    assert isinstance(genome, Genome) and "/" not in genome.name
