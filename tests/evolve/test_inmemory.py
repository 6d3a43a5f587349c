"""In-memory candidates against mergekit's run_merge on the same recipe, for every method of the genome."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rp_eval.evolve.genome import Genome, GenomeError, decode, recipe_yaml, to_recipe
from rp_eval.evolve.inmemory import Resident, merge_tensor


def _mergekit(recipe: dict, out) -> dict[str, torch.Tensor]:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions
    from safetensors.torch import load_file

    run_merge(
        MergeConfiguration.model_validate(recipe), str(out), MergeOptions(device="cpu", quiet=True, random_seed=0)
    )
    weights = {}
    for f in out.glob("*.safetensors"):
        weights.update(load_file(f))
    return weights


CASES = [
    ("linear", dict(split_attention_mlp=True), None),
    ("task_arithmetic", dict(layer_granularity=2), "base"),
    ("ties", dict(layer_granularity=1, split_attention_mlp=True), "base"),
    ("dare_ties", dict(layer_granularity=2), "base"),
    ("slerp", dict(layer_granularity=2, split_attention_mlp=True), "base"),
]


@pytest.mark.parametrize(("method", "extra", "base"), CASES, ids=[c[0] for c in CASES])
def test_in_memory_equals_mergekit(method, extra, base, tiny_family, workspace, tmp_path):
    models = [str(tiny_family["a"])] if method == "slerp" else [str(tiny_family["a"]), str(tiny_family["b"])]
    genome = Genome(
        models=models, base_model=str(tiny_family[base]) if base else None, method=method, dtype="float32", **extra
    )
    resident = Resident(genome, device="cpu", dtype=torch.float32)
    x = np.random.default_rng(3).uniform(0.2, 0.9, genome.x0(4).size)
    if method == "dare_ties":
        x[1::2] = 1.0  # density 1: DARE keeps everything, so the rest must match mergekit exactly
    decoded = decode(genome, 4, x)
    resident.build(decoded)
    ours = dict(resident.model.named_parameters())
    theirs = _mergekit(to_recipe(decoded), tmp_path / "out")
    assert set(ours) <= set(theirs)
    for name, tensor in ours.items():
        torch.testing.assert_close(tensor.detach(), theirs[name].float(), rtol=1e-5, atol=1e-5, msg=name)
    assert "merge_method: " + method in recipe_yaml(decoded)


def test_dare_mask_is_seeded_and_keeps_the_density(tiny_family, workspace):
    genome = Genome(models=[str(tiny_family["a"]), str(tiny_family["b"])], base_model=str(tiny_family["base"]))
    resident = Resident(genome, device="cpu", dtype=torch.float32)
    x = genome.x0(4)
    x[1::2] = 0.5
    d = decode(genome, 4, x)
    name = "model.layers.0.mlp.up_proj.weight"
    one, again, other = (merge_tensor(resident, d, name, s) for s in (7, 7, 8))
    assert torch.equal(one, again) and not torch.equal(one, other)
    kept = (resident.sources[0][name] - resident.base[name]).abs() > 0
    assert kept.all()  # every delta is non-zero, so the mask's density shows in the result
    changed = ((one - resident.base[name]).abs() > 0).float().mean().item()
    assert 0.55 < changed < 0.95  # each model keeps half; the union of two masks is about 3/4


def test_layer_granularity_must_divide_the_layer_count(tiny_family, workspace):
    genome = Genome(models=[str(tiny_family["a"]), str(tiny_family["b"])], method="linear", layer_granularity=3)
    with pytest.raises(GenomeError, match="does not divide the layer count 4"):
        Resident(genome, device="cpu")


def test_incompatible_models_are_refused_with_the_reason(tiny_llama, tiny_family, workspace):
    from rp_eval.merge.compat import CompatibilityError

    genome = Genome(models=[str(tiny_llama), str(tiny_family["a"])], method="linear")
    with pytest.raises(CompatibilityError, match="num_hidden_layers 2 vs 4"):
        Resident(genome, device="cpu")


def _magnitude(delta: torch.Tensor, density: float) -> torch.Tensor:
    """TIES's sparsification as mergekit writes it (a float mask over the top-k magnitudes)."""
    if density >= 1:
        return delta
    if density <= 0 or delta.numel() == 0:
        return torch.zeros_like(delta)
    k = max(1, int(density * delta.numel()))
    flat = delta.reshape(-1)
    mask = torch.zeros_like(flat)
    mask[torch.topk(flat.abs(), k, sorted=False).indices] = 1
    return (flat * mask).reshape(delta.shape)


def _straightforward(r: Resident, d, name: str, seed: int) -> torch.Tensor:
    """The formulation that mirrors mergekit's code (stacked deltas, float masks, mergekit's own DARE rescale),
    which rp_eval's merge_tensor rewrote for speed: the two must agree."""
    from mergekit.sparsify import RescaleNorm, rescaled_masked_tensor

    from rp_eval.evolve.inmemory import _group_and_set, _thresholds, dare_keep, dare_key

    group, set_ = _group_and_set(d, name)
    method = d.genome.method
    base = r.base[name].float()
    xs = [s[name].float() for s in r.sources]
    weights = torch.tensor([d.value(group, i, set_, "weight") for i in range(len(xs))])
    deltas = torch.stack([x - base for x in xs])
    for i in range(len(xs)):
        density = d.value(group, i, set_, "density") if method != "task_arithmetic" else 1.0
        if method == "ties":
            deltas[i] = _magnitude(deltas[i], density)
        elif method == "dare_ties" and density < 1:
            key, threshold = torch.tensor(dare_key(seed, i, name)), torch.tensor(_thresholds([density])[0])
            mask = dare_keep(base.numel(), key, threshold, "cpu").view(base.shape).to(deltas.dtype)  # flat order
            deltas[i] = rescaled_masked_tensor(deltas[i], mask, RescaleNorm.l1)
    weights = weights.reshape(-1, *([1] * base.dim()))
    deltas = deltas * weights
    if method == "task_arithmetic":
        mixed, divisor = deltas.sum(0), weights.sum(0)
        divisor = torch.where(divisor.abs() < 1e-8, torch.ones_like(divisor), divisor)
    else:
        majority = (deltas.sum(0) >= 0).float() * 2 - 1
        mask = (deltas.sign() == majority).float()
        mixed, divisor = (deltas * mask).sum(0), (weights * mask).sum(0)
        divisor = torch.where(divisor == 0, torch.ones_like(divisor), divisor)
    if d.normalize:
        mixed = mixed / divisor
    return base + mixed


@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "dare_ties"])
@pytest.mark.parametrize("normalize", [True, False])
def test_the_fast_formulation_equals_the_straightforward_one(method, normalize, tiny_family, workspace):
    genome = Genome(
        models=[str(tiny_family["a"]), str(tiny_family["b"])], base_model=str(tiny_family["base"]), method=method,
        dtype="float32", layer_granularity=2, normalize=normalize,
    )  # fmt: skip
    resident = Resident(genome, device="cpu", dtype=torch.float32)
    x = np.random.default_rng(5).uniform(0.2, 0.8, genome.x0(4).size)
    x[0] = -0.4  # a negative weight: its delta's sign flips in the consensus
    decoded = decode(genome, 4, x)
    for name in resident.names:
        ours, reference = merge_tensor(resident, decoded, name, 11), _straightforward(resident, decoded, name, 11)
        torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-7, msg=name)


def test_dare_hash_mask_keeps_each_element_with_the_density_independently():
    from rp_eval.evolve.inmemory import _thresholds, dare_keep, dare_key

    n = 200_000
    for density in (0.1, 0.5, 0.9):
        threshold = torch.tensor(_thresholds([density])[0])
        one = dare_keep(n, torch.tensor(dare_key(0, 0, "w")), threshold, "cpu")
        two = dare_keep(n, torch.tensor(dare_key(0, 1, "w")), threshold, "cpu")
        assert abs(one.float().mean().item() - density) < 0.005
        # two sources' masks are independent: both kept about density² of the time, not density
        assert abs((one & two).float().mean().item() - density**2) < 0.005
        # no stripes: every run of 64 neighbours keeps about the density too
        runs = one[: n // 64 * 64].view(-1, 64).float().mean(1)
        assert runs.std().item() < 1.5 * (density * (1 - density) / 64) ** 0.5
    # a matrix's mask is the flat mask, row by row (the kernels take tensors as matrices)
    flat = dare_keep(300 * 70, torch.tensor(9), torch.tensor(_thresholds([0.3])[0]), "cpu")
    assert torch.equal(
        dare_keep((300, 70), torch.tensor(9), torch.tensor(_thresholds([0.3])[0]), "cpu"), flat.view(300, 70)
    )
    everything = dare_keep(n, torch.tensor(5), torch.tensor(_thresholds([1.0])[0]), "cpu")
    nothing = dare_keep(n, torch.tensor(5), torch.tensor(_thresholds([0.0])[0]), "cpu")
    assert everything.all() and not nothing.any()
    # the same bits for the same key, every time (the mask of a candidate is reproducible)
    again = dare_keep(n, torch.tensor(dare_key(0, 0, "w")), torch.tensor(_thresholds([0.9])[0]), "cpu")
    assert torch.equal(
        again, dare_keep(n, torch.tensor(dare_key(0, 0, "w")), torch.tensor(_thresholds([0.9])[0]), "cpu")
    )


def test_build_writes_what_merge_tensor_gives(tiny_family, workspace):
    """build() takes every tensor's parameters from one table; it must write exactly what merge_tensor gives."""
    genome = Genome(
        models=[str(tiny_family["a"]), str(tiny_family["b"])], base_model=str(tiny_family["base"]),
        method="dare_ties", dtype="float32", layer_granularity=2,
    )  # fmt: skip
    resident = Resident(genome, device="cpu", dtype=torch.float32)
    x = np.random.default_rng(9).uniform(0.2, 0.8, genome.x0(4).size)
    decoded = decode(genome, 4, x)
    resident.build(decoded, seed=3)
    for name, param in resident.model.named_parameters():
        assert torch.equal(param.detach(), merge_tensor(resident, decoded, name, 3)), name
