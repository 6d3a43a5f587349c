"""Candidates built in memory: source weights held once (on the GPU when there is one), each candidate's merged
weights written into one resident model; nothing is written to disk or reloaded.

The math mirrors mergekit's methods (same formulas, same parameter lookup: layer tensors take their layer
group's slice, embeddings the first slice's, final norm and LM head the last one's, a `filter` matches when it is
a substring of the tensor name); slerp and mergekit's rescaling are called from mergekit itself. Two
deliberate differences: TIES keeps the top-k magnitudes with `torch.topk` instead of a full argsort (the same
set unless values tie), and DARE draws its mask from a generator seeded by (seed, tensor name), so a
candidate is reproducible, where mergekit draws from the global RNG. Work is done in float32 and written back
in the resident model's dtype. tests/evolve/test_inmemory.py compares every method with mergekit's run_merge.
"""

from __future__ import annotations

import re
import zlib

import torch

from rp_eval.evolve.genome import FILTERS, Decoded, Genome, GenomeError

LAYER = re.compile(r"\.layers\.(\d+)\.")


def _source(name: str) -> str:
    from rp_eval.store import get_store

    row = get_store().get_model(name)
    return row.source if row is not None else name


def check_genome(genome: Genome) -> int:
    """The layer count, after checking the models can merge with the method (configs only)."""
    from rp_eval.merge.compat import read_shape, require_mergeable

    refs = [*genome.models, *([genome.base_model] if genome.base_model else [])]
    require_mergeable(refs, genome.method)
    shapes = [read_shape(r) for r in refs]
    if len({s.vocab_size for s in shapes}) > 1 or len({s.tokenizer for s in shapes if s.tokenizer}) > 1:
        raise GenomeError("the models have different vocabularies: an evolutionary merge needs one shared tokenizer")
    layers = shapes[0].num_hidden_layers
    genome.groups(layers)  # raises when layer_granularity does not divide it
    return layers


class Resident:
    """The source weights of a genome and one model the candidates are written into."""

    def __init__(
        self, genome: Genome, device: str | None = None, dtype: torch.dtype | None = None, tokenizer: bool = True
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rp_eval.chat.formats import detect_format, get_format
        from rp_eval.models.loading import pick_device
        from rp_eval.store import get_store

        self.genome = genome
        self.num_layers = check_genome(genome)
        picked_device, picked_dtype = pick_device()
        self.device, self.dtype = device or picked_device, dtype or picked_dtype
        first = genome.base_model or genome.models[0]
        self.model = AutoModelForCausalLM.from_pretrained(_source(first), dtype=self.dtype).to(self.device).eval()
        self.tokenizer = self.format = None  # `tokenizer=False`: weights only (the benchmark)
        if tokenizer:
            self.tokenizer = AutoTokenizer.from_pretrained(_source(first))
            row = get_store().get_model(first)
            fmt = row.prompt_format if row is not None else "auto"
            model_type = self.model.config.model_type
            self.format = get_format(fmt) if fmt != "auto" else detect_format(self.tokenizer, model_type, first)
        self.names = [n for n, _ in self.model.named_parameters()]
        self.base = {n: p.detach().clone() for n, p in self.model.named_parameters()} if genome.base_model else None
        self.sources = [self._weights(m) for m in genome.models]
        # the resident model's generation service, its graphs captured once: every candidate reuses them (the
        # weights are written in place). Fitness prompts are short: 2,048 columns leave room for more rows.
        from rp_eval.chat.service import GenerationService, own

        self.service = GenerationService(self.model, columns=2048 if self.device == "cuda" else None)
        own(self.model, self.service)
        if self.device == "cuda":
            self.service.warm_up()

    def _weights(self, name: str) -> dict[str, torch.Tensor]:
        from transformers import AutoModelForCausalLM

        m = AutoModelForCausalLM.from_pretrained(_source(name), dtype=self.dtype)
        weights = {n: p.detach().to(self.device) for n, p in m.named_parameters()}
        del m
        return weights

    @torch.no_grad()
    def build(self, decoded: Decoded, seed: int = 0) -> None:
        """Write the candidate's merged weights into the resident model."""
        params = dict(self.model.named_parameters())
        for name in self.names:
            params[name].copy_(merge_tensor(self, decoded, name, seed))


def _group_and_set(d: Decoded, name: str) -> tuple[int, int]:
    match = LAYER.search(name)
    step = d.genome.layer_granularity or d.num_layers
    # layers: their group; embeddings: the first slice's parameters; final norm and LM head: the last one's
    last = d.values.shape[0] - 1
    group = int(match.group(1)) // step if match else (0 if "embed" in name else last)
    if d.genome.sets == 1:
        return group, 0
    return group, next((i for i, f in enumerate(FILTERS) if f in name), len(FILTERS))


def merge_tensor(r: Resident, d: Decoded, name: str, seed: int = 0) -> torch.Tensor:
    group, set_ = _group_and_set(d, name)
    method = d.genome.method
    if method == "linear":
        xs = [s[name].float() for s in r.sources]
        w = [d.value(group, i, set_, "weight") for i in range(len(xs))]
        out = sum(wi * x for wi, x in zip(w, xs, strict=True))
        return out / sum(w) if d.normalize else out
    base = r.base[name].float()
    if method == "slerp":
        from mergekit.merge_methods.slerp import slerp

        t = torch.tensor([d.value(group, 0, set_, "t")])  # mergekit's slerp takes a batch of whole tensors
        return slerp(t, base[None], r.sources[0][name].float()[None])[0]
    # Task arithmetic, TIES and DARE-TIES, one source at a time and without a host sync: the formulas of
    # mergekit's generalized task arithmetic (sparsify, weight, sign consensus by sum, normalise by the kept
    # weights), rewritten because mergekit's version stacks every delta, makes float masks, and reads DARE's
    # rescale factor on the host once per tensor and source (which stalls the GPU between kernels): about half
    # the passes over memory. tests/evolve/test_inmemory.py checks it against mergekit and against the
    # straightforward formulation.
    weights = torch.tensor([d.value(group, i, set_, "weight") for i in range(len(r.sources))], device=base.device)
    deltas = []
    for i, source in enumerate(r.sources):
        delta = source[name] - base  # float32 (the base is): the source's dtype is widened in the same pass
        if method in ("ties", "dare_ties"):
            density = d.value(group, i, set_, "density")
            delta = _magnitude(delta, density) if method == "ties" else _dare(delta, density, seed, name, i)
        deltas.append(delta * weights[i])
    total = deltas[0]
    for delta in deltas[1:]:
        total = total + delta
    if method == "task_arithmetic":
        mixed, divisor = total, weights.sum()
        divisor = torch.where(divisor.abs() < 1e-8, torch.ones_like(divisor), divisor)
    else:  # TIES sign consensus, as mergekit's get_mask(method="sum"): keep the deltas of the sum's sign
        positive = total >= 0
        mixed, divisor = torch.zeros_like(base), torch.zeros_like(base)
        for i, delta in enumerate(deltas):
            keep = torch.where(positive, delta > 0, delta < 0)
            mixed += torch.where(keep, delta, 0.0)
            divisor += torch.where(keep, weights[i], 0.0)
        divisor = torch.where(divisor == 0, torch.ones_like(divisor), divisor)
    if d.normalize:
        mixed = mixed / divisor
    return base + mixed


def _magnitude(delta: torch.Tensor, density: float) -> torch.Tensor:
    if density >= 1:
        return delta
    if density <= 0 or delta.numel() == 0:
        return torch.zeros_like(delta)
    k = max(1, int(density * delta.numel()))
    flat = delta.reshape(-1)
    mask = torch.zeros_like(flat)
    mask[torch.topk(flat.abs(), k, sorted=False).indices] = 1
    return (flat * mask).reshape(delta.shape)


def _dare(delta: torch.Tensor, density: float, seed: int, name: str, index: int) -> torch.Tensor:
    """mergekit's DARE (random drop, rescaled to keep the L1 norm: sparsify.rescaled_masked_tensor with
    RescaleNorm.l1), with the "norm too small" test done on the device instead of on the host."""
    if density >= 1:
        return delta
    gen = torch.Generator(device=delta.device).manual_seed(zlib.crc32(f"{seed}/{index}/{name}".encode()))
    kept = torch.rand(delta.shape, generator=gen, device=delta.device) < density
    masked = torch.where(kept, delta, 0.0)
    before, after = delta.abs().sum(), masked.abs().sum()
    eps = 1e-7
    scale = torch.where((before < eps) | (after < eps), torch.ones_like(before), before / after)
    return masked * scale
