"""DRY, XTC, typical-p, logit_bias and bans (rp_eval/chat/samplers.py, rp_eval/chat/sampling.py), each checked
against a reference written here from the published description, on crafted logits and histories: one row at a
time, in plain Python loops, the opposite of the batched tensor code it checks. Rows that do not ask for them are
unchanged bit for bit, even beside rows that do."""

from __future__ import annotations

import math
import random

import pytest
import torch

from rp_eval.chat import samplers
from rp_eval.chat.generate import GenerationSettings
from rp_eval.chat.sampling import Sampler

V = 12
CPU = torch.device("cpu")


# -- references ---------------------------------------------------------------------------------------------


def dry_reference(history, breakers, multiplier, base, allowed):
    """DRY as its author describes it: for every earlier place where the last token occurred, the repeated run
    is how far the tokens before it equal the tokens before the last one (a breaker ends it); the token that
    followed there would extend that run, and is penalised multiplier * base ** (run - allowed) if run >=
    allowed (the longest run, where a token follows several)."""
    out = [0.0] * V
    if len(history) < 2 or history[-1] in breakers:
        return out
    best: dict[int, int] = {}
    for i in range(len(history) - 1):
        if history[i] != history[-1] or history[i + 1] in breakers:
            continue
        run = 1
        while i - run >= 0:
            previous = history[-1 - run]
            if history[i - run] != previous or previous in breakers:
                break
            run += 1
        best[history[i + 1]] = max(run, best.get(history[i + 1], 0))
    for token, run in best.items():
        if run >= allowed:
            out[token] = multiplier * base ** (run - allowed)
    return out


def xtc_reference(probs, threshold, guard):
    """XTC: the tokens at least `threshold` likely, all but the least likely of them, are removed (none when
    fewer than two are that likely, or when a guarded token would go)."""
    above = [i for i, p in enumerate(probs) if p >= threshold]
    if len(above) < 2:
        return set()
    keep = min(above, key=lambda i: probs[i])
    gone = {i for i in above if i != keep}
    return set() if gone & set(guard) else gone


def typical_reference(probs, mass):
    """Typical sampling (Meister et al.): rank tokens by |surprise - entropy|, keep them in that order until
    their probabilities reach `mass` (the one that reaches it too)."""
    entropy = -sum(p * math.log(p) for p in probs if p > 0)
    order = sorted(range(len(probs)), key=lambda i: abs(-math.log(probs[i]) - entropy))
    kept, total = set(), 0.0
    for i in order:
        kept.add(i)
        total += probs[i]
        if total >= mass:
            break
    return kept


# -- the batched code against them ------------------------------------------------------------------------------


def test_dry_matches_the_reference_on_crafted_and_random_histories():
    crafted = [
        [1, 2, 3, 4, 1, 2, 3],  # "1 2 3" again: 4 would extend a run of 3
        [1, 2, 3, 4, 5, 1, 2, 3, 4, 9, 1, 2, 3],  # "1 2 3" seen twice before, followed by 4 and by 9
        [5, 0, 1, 2, 6, 0, 1, 2],  # 0 is a breaker: the run stops at it
        [7, 7, 7, 7, 7],
        [3, 1],
    ]
    rng = random.Random(4)
    histories = crafted + [[rng.randrange(4) for _ in range(rng.randrange(2, 30))] for _ in range(40)]
    for multiplier, base, allowed in [(0.8, 1.75, 2), (1.0, 2.0, 1), (0.5, 1.0, 3)]:
        width = max(len(h) for h in histories)
        batch = torch.full((len(histories), width), -1, dtype=torch.long)
        for j, h in enumerate(histories):
            batch[j, width - len(h) :] = torch.tensor(h)
        breakers = torch.zeros(len(histories), V, dtype=torch.bool)
        breakers[:, 0] = True
        n = len(histories)
        got = samplers.dry(
            torch.zeros(n, V),
            batch,
            breakers,
            torch.full((n,), multiplier),
            torch.full((n,), base),
            torch.full((n,), allowed),
        )
        for j, h in enumerate(histories):
            expected = torch.tensor([-p for p in dry_reference(h, {0}, multiplier, base, allowed)])
            assert torch.allclose(got[j], expected, rtol=1e-5), (h, got[j], expected)
    # the crafted case means what it says: after "1 2 3" the 4 that followed it before is penalised 0.8 * 1.75
    assert dry_reference([1, 2, 3, 4, 1, 2, 3], {0}, 0.8, 1.75, 2)[4] == pytest.approx(0.8 * 1.75)


def test_xtc_matches_the_reference():
    rng = random.Random(5)
    for _ in range(200):
        logits = torch.tensor([[rng.gauss(0, 2) for _ in range(V)]])
        threshold = rng.choice([0.05, 0.1, 0.2, 0.3])
        guard = torch.zeros(1, V, dtype=torch.bool)
        guarded = [rng.randrange(V)] if rng.random() < 0.3 else []
        guard[0, guarded] = True
        out = samplers.xtc(logits.clone(), torch.tensor([threshold]), torch.tensor([True]), guard, -1e30)
        gone = {i for i in range(V) if out[0, i] < -1e29}
        assert gone == xtc_reference(logits[0].softmax(-1).tolist(), threshold, guarded)
        # not fired: nothing changes
        same = samplers.xtc(logits.clone(), torch.tensor([threshold]), torch.tensor([False]), guard, -1e30)
        assert torch.equal(same, logits)


def test_typical_matches_the_reference():
    rng = random.Random(6)
    for _ in range(200):
        logits = torch.tensor([[rng.gauss(0, 2) for _ in range(V)]])
        mass = rng.choice([0.2, 0.5, 0.9, 0.95])
        out = samplers.typical(logits.clone(), torch.tensor([mass]), -1e30)
        kept = {i for i in range(V) if out[0, i] > -1e29}
        assert kept == typical_reference(logits[0].softmax(-1).tolist(), mass)
    assert torch.equal(samplers.typical(logits.clone(), torch.tensor([1.0]), -1e30), logits)


# -- in the sampler, per row ---------------------------------------------------------------------------------


class Letters:
    """A tokenizer of single letters: id i is chr(97 + i); enough for breakers and banned strings."""

    eos_token_id = V - 1

    def encode(self, text, add_special_tokens=False):
        return [ord(c) - 97 if "a" <= c <= "k" else 0 for c in text]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(97 + i) for i in ids)


def _run(settings_by_row, steps=40, seed=11):
    """Tokens each row draws over `steps` steps of fixed random logits (each row its own), all rows together."""
    n = len(settings_by_row)
    sampler = Sampler(n, V, CPU)
    for r, settings in enumerate(settings_by_row):
        sampler.assign(r, settings, [1, 2, 3], seed=seed + r, tokenizer=Letters())
    gens = [torch.Generator().manual_seed(r) for r in range(n)]
    made = [[] for _ in range(n)]
    for _ in range(steps):
        logits = torch.stack([torch.randn(V, generator=g) for g in gens])
        for r, token in enumerate(sampler.sample(logits, list(range(n))).tolist()):
            made[r].append(token)
    return made


NEUTRAL = GenerationSettings(temperature=0.9, top_p=0.95, min_p=0.02, max_new_tokens=64)
ROLEPLAY = NEUTRAL.model_copy(
    update={
        "dry_multiplier": 0.8,
        "xtc_probability": 0.5,
        "xtc_threshold": 0.1,
        "typical_p": 0.9,
        "logit_bias": ((4, -100.0),),
        "banned_tokens": (5,),
        "banned_strings": ("cab",),
    }  # fmt: skip
)


def test_neutral_rows_are_unchanged_bit_for_bit_beside_rows_with_every_sampler_on():
    alone = _run([NEUTRAL, NEUTRAL.model_copy(update={"temperature": 0.0})])
    explicit = NEUTRAL.model_copy(update={"typical_p": 1.0, "dry_multiplier": 0.0, "xtc_probability": 0.0})
    beside = _run([explicit, NEUTRAL.model_copy(update={"temperature": 0.0}), ROLEPLAY, ROLEPLAY])
    assert beside[:2] == alone
    # and the samplers did act on the other rows: no banned token, no banned string
    for row in beside[2:]:
        assert 4 not in row and 5 not in row
        assert "cab" not in Letters().decode(row)
    assert beside[2] != alone[0]


def test_logit_bias_and_bans_reach_greedy_rows_too():
    greedy = GenerationSettings(temperature=0.0, max_new_tokens=64)
    logits = torch.zeros(1, V)
    logits[0, 7] = 5.0
    logits[0, 8] = 4.0
    for settings, expected in [
        (greedy, 7),
        (greedy.model_copy(update={"logit_bias": ((7, -100.0),)}), 8),
        (greedy.model_copy(update={"logit_bias": ((2, 30.0),)}), 2),
        (greedy.model_copy(update={"banned_tokens": (7, 8)}), 0),
        (greedy.model_copy(update={"ban_eos_token": True, "logit_bias": ((V - 1, 50.0),)}), 7),
    ]:
        sampler = Sampler(1, V, CPU)
        sampler.assign(0, settings, [1], seed=0, tokenizer=Letters())
        assert int(sampler.sample(logits.clone(), [0])[0]) == expected, settings


def test_dry_stops_a_greedy_loop_and_a_banned_string_never_appears():
    """Logits that always prefer the next token of a cycle 1 2 3 1 2 3 ...: greedy repeats it; DRY breaks it."""

    def loop(settings, steps=30):
        sampler = Sampler(1, V, CPU)
        history = [1, 2, 3]
        sampler.assign(0, settings, list(history), seed=0, tokenizer=Letters())
        for _ in range(steps):
            logits = torch.zeros(1, V)
            logits[0, history[-1] % 3 + 1] = 3.0
            logits[0, 9] = 1.0
            history.append(int(sampler.sample(logits, [0])[0]))
        return history[3:]

    greedy = GenerationSettings(temperature=0.0, max_new_tokens=64)
    assert loop(greedy) == [1, 2, 3] * 10
    dried = loop(greedy.model_copy(update={"dry_multiplier": 1.0, "dry_base": 1.75, "dry_allowed_length": 2}))
    assert 9 in dried and dried != [1, 2, 3] * 10
    # without a breaker the run of "1 2 3 ..." is never longer than allowed + a few tokens
    text = Letters().decode(loop(greedy.model_copy(update={"banned_strings": ("bcdb",)})))
    assert "bcdb" not in text and "bcd" in text  # the string is cut where it would complete, not before
    # a breaker ("b" here) ends every run, so DRY lets the loop be
    broken = greedy.model_copy(update={"dry_multiplier": 1.0, "dry_sequence_breakers": ("b",)})
    assert loop(broken) == [1, 2, 3] * 10


def test_xtc_uses_the_rows_own_seeded_draws():
    hot = NEUTRAL.model_copy(update={"xtc_probability": 0.5, "xtc_threshold": 0.05})
    assert _run([hot]) == _run([hot])  # reproducible with the seed
    assert _run([hot]) != _run([NEUTRAL])
