"""Named sampler presets: one line each; the Chat tab fills its sliders from them (names in the locale table as
`preset_<name>`). Values follow common practice for 7B chat models (text-generation-webui's and SillyTavern's
presets of the same spirit); `min_p` is the min-p sampling of Nguyen et al. (2024). A preset is a `SamplerParams`: a field it does not name
keeps its default (the sampler off)."""

from __future__ import annotations

from rp_eval.chat.sampler_params import SamplerParams

PRESETS: dict[str, SamplerParams] = {
    "balanced": SamplerParams(temperature=0.7, top_p=0.9, top_k=0, min_p=0.0, repetition_penalty=1.0),
    "greedy": SamplerParams(temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0),
    "focused": SamplerParams(temperature=0.5, top_p=0.85, top_k=40, min_p=0.0, repetition_penalty=1.1),
    "creative": SamplerParams(temperature=1.0, top_p=0.95, top_k=0, min_p=0.05, repetition_penalty=1.05),
    "min_p": SamplerParams(temperature=1.0, top_p=1.0, top_k=0, min_p=0.1, repetition_penalty=1.0),
    # DRY's author's suggested start (multiplier 0.8, base 1.75, allowed length 2) with min-p, as role-players
    # set it up in SillyTavern; XTC at its usual 0.1 threshold, half the steps
    "dry_min_p": SamplerParams(
        temperature=1.0, top_p=1.0, top_k=0, min_p=0.05, repetition_penalty=1.0, dry_multiplier=0.8
    ),
    "dry_xtc": SamplerParams(
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        min_p=0.02,
        repetition_penalty=1.0,
        dry_multiplier=0.8,
        xtc_threshold=0.1,
        xtc_probability=0.5,
    ),
}
DEFAULT_PRESET = "balanced"
