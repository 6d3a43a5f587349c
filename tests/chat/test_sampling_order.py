"""`temperature_last` (text-generation-webui's option, on in SillyTavern's defaults): top-p and min-p choose
among the raw logits and the temperature reshapes only the survivors. Checked against a direct reference on
crafted logits, by the frequencies of many draws."""

from __future__ import annotations

import torch

from rp_eval.chat.generate import GenerationSettings
from rp_eval.chat.sampling import Sampler

LOGITS = torch.tensor([[3.0, 2.0, 1.0, 0.5, 0.0, -1.0]])


def _frequencies(settings: GenerationSettings, draws: int = 4000) -> torch.Tensor:
    sampler = Sampler(1, LOGITS.shape[-1], torch.device("cpu"))
    sampler.assign(0, settings, [0], seed=3)
    counts = torch.zeros(LOGITS.shape[-1])
    for _ in range(draws):
        counts[int(sampler.sample(LOGITS.clone(), [0])[0])] += 1
    return counts / draws


def _reference(temperature: float, min_p: float, last: bool) -> torch.Tensor:
    x = LOGITS[0] if last else LOGITS[0] / temperature
    p = x.softmax(-1)
    kept = p >= min_p * p.max()
    y = torch.where(kept, LOGITS[0] / temperature, torch.tensor(float("-inf")))
    return y.softmax(-1)


def test_temperature_last_filters_the_raw_logits_then_applies_the_temperature():
    for last in (False, True):
        settings = GenerationSettings(temperature=3.0, top_p=1.0, min_p=0.2, temperature_last=last)
        expected = _reference(3.0, 0.2, last)
        seen = _frequencies(settings)
        assert torch.allclose(seen, expected, atol=0.03), (last, seen, expected)
    # the two orders differ here: at temperature 3, min-p 0.2 keeps all six tokens; on the raw logits, two
    assert int((_reference(3.0, 0.2, False) > 0).sum()) == 6
    assert int((_reference(3.0, 0.2, True) > 0).sum()) == 2
