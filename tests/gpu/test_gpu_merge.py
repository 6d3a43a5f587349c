"""The in-memory merge of an evolution candidate on a CUDA GPU (rp_eval/evolve/inmemory.py): there the fused
kernels are compiled by inductor, elsewhere the same functions run eagerly, so the GPU's result is held to the
CPU's. Skipped without CUDA (CI); run through the device tool with the rest of tests/gpu."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.gpu.test_gpu import record

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    import os

    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("family")
    os.environ["RP_EVAL_HOME"] = str(root / "workspace")  # the store the Resident looks names up in
    config = LlamaConfig(hidden_size=128, intermediate_size=352, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=1000, max_position_embeddings=256)  # fmt: skip
    paths = {}
    for seed, name in enumerate(("base", "a", "b")):
        torch.manual_seed(seed)
        LlamaForCausalLM(config).save_pretrained(root / name)
        paths[name] = str(root / name)
    return paths


@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "dare_ties"])
def test_compiled_merge_on_the_gpu_equals_the_eager_one_on_the_cpu(family, method):
    from rp_eval.evolve.genome import Genome, decode
    from rp_eval.evolve.inmemory import Resident, _thresholds, dare_keep, dare_key

    genome = Genome(models=[family["a"], family["b"]], base_model=family["base"], method=method, dtype="float32",
                    layer_granularity=2)  # fmt: skip
    x = np.random.default_rng(4).uniform(0.2, 0.8, genome.x0(4).size)
    x[0] = -0.3  # a negative weight
    decoded = decode(genome, 4, x)
    gpu = Resident(genome, device="cuda", dtype=torch.float32, tokenizer=False)
    cpu = Resident(genome, device="cpu", dtype=torch.float32, tokenizer=False)
    gpu.build(decoded, seed=5)
    cpu.build(decoded, seed=5)
    worst = 0.0
    for (name, ours), (_, theirs) in zip(gpu.model.named_parameters(), cpu.model.named_parameters(), strict=True):
        diff = (ours.detach().cpu() - theirs.detach()).abs().max().item()
        worst = max(worst, diff)
        torch.testing.assert_close(ours.detach().cpu(), theirs.detach(), rtol=1e-5, atol=1e-6, msg=name)
    # DARE's mask is integer arithmetic: the same bits on both devices
    key, threshold = torch.tensor(dare_key(5, 1, "w")), torch.tensor(_thresholds([0.37])[0])
    same_mask = torch.equal(
        dare_keep(1 << 20, key.cuda(), threshold.cuda(), "cuda").cpu(), dare_keep(1 << 20, key, threshold, "cpu")
    )
    assert same_mask
    # bf16 weights (the sources as well, so both sides merge the same numbers): the result is written in the
    # model's dtype in the same kernel; at most a rounding apart
    genome16 = genome.model_copy(update={"dtype": "bfloat16"})
    gpu16 = Resident(genome16, device="cuda", dtype=torch.bfloat16, tokenizer=False)
    cpu16 = Resident(genome16, device="cpu", dtype=torch.bfloat16, tokenizer=False)
    gpu16.build(decoded, seed=5)
    cpu16.build(decoded, seed=5)
    for (name, ours), (_, theirs) in zip(gpu16.model.named_parameters(), cpu16.model.named_parameters(), strict=True):
        assert ours.dtype == torch.bfloat16
        ours, theirs = ours.detach().float().cpu(), theirs.detach().float()
        if method == "ties":
            # bf16 deltas tie often, and torch.topk breaks ties in another order on each device: a few kept
            # elements at the density's edge differ; everything else must be the same
            close = torch.isclose(ours, theirs, rtol=8e-3, atol=1e-6)
            assert close.float().mean().item() > 0.99, name
        else:
            torch.testing.assert_close(ours, theirs, rtol=8e-3, atol=1e-6, msg=name)
    gpu.service.close()
    gpu16.service.close()
    record(f"merge-{method}", max_abs_diff_vs_cpu=worst, dare_mask_bits_equal=same_mask)
