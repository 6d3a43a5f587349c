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
