"""Candidates built in memory: source weights held once (on the GPU when there is one), each candidate's merged
weights written into one resident model; nothing is written to disk or reloaded.

The math mirrors mergekit's methods (same formulas, same parameter lookup: layer tensors take their layer
group's slice, embeddings the first slice's, final norm and LM head the last one's, a `filter` matches when it is
a substring of the tensor name); slerp is called from mergekit itself, task arithmetic, TIES and DARE-TIES are
fused kernels of mergekit's formulas (see FUSED_METHODS below). Two deliberate differences: TIES keeps the top-k
magnitudes with `torch.topk` instead of a full argsort (the same set unless values tie), and DARE's drop mask is
a hash of (seed, source, tensor, element), so a candidate is reproducible on any device, where mergekit draws
from the global RNG. Work is done in float32 and written in the resident model's dtype.
tests/evolve/test_inmemory.py compares every method with mergekit's run_merge.
"""

from __future__ import annotations

import re
import zlib

import torch

from rp_eval.evolve.genome import FILTERS, Decoded, Genome, GenomeError

LAYER = re.compile(r"\.layers\.(\d+)\.")
RESIDENT_ROWS = 64  # a fitness batch's prompts at once (the default dev subset is 64 items)
FITNESS_BATCH = 32  # prompts a fitness batch takes without a static cache (the eager engine, CPU)


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
        self,
        genome: Genome,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        tokenizer: bool = True,
        warm: bool = True,
    ) -> None:
        """`warm=False`: the compiles and graph captures wait for `warm_up` (a pool's workers take turns)."""
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
        # weights are written in place).
        from rp_eval.chat.service import GenerationService, own

        rows, columns = self._kv_plan() if self.device == "cuda" else (None, None)
        self.service = GenerationService(self.model, rows=rows, columns=columns)
        own(self.model, self.service)
        # a fitness batch is as many prompts as the cache has rows: one prefill and one run of decode steps for
        # the whole dev subset, where batches of 32 made two runs one after the other (H200: 2.5-3.0 s for
        # 64 items x 64 tokens against about half that in one run)
        engine = self.service.static_engine() if self.device == "cuda" else None
        self.batch_rows = engine.rows if engine is not None else FITNESS_BATCH
        if warm:
            self.warm_up()

    def warm_up(self) -> None:
        """Compile the fast path and capture its graphs (CUDA; nothing to do elsewhere)."""
        if self.device == "cuda":
            self.service.warm_up()

    def _kv_plan(self) -> tuple[int, int]:
        """Rows and columns of the resident's KV cache. Fitness prompts are short (the task's, 200-300 tokens,
        plus 64 new), so rows matter more than columns: up to RESIDENT_ROWS rows of 2,048 columns, or as many
        rows of 1,024 as fit where memory is short. The sources are already loaded, so what is free now is the budget; the
        fraction left over covers the step's activations and the prefill of a whole batch."""
        from rp_eval.chat.engine import plan

        budget = int(torch.cuda.mem_get_info(self.model.device)[0] * 0.8)
        rows, columns = plan(self.model, budget, most_rows=RESIDENT_ROWS, columns=2048)
        if rows < RESIDENT_ROWS:  # short of memory: shorter rows, as many as fit (a batch is then that many)
            rows, columns = plan(self.model, budget, most_rows=RESIDENT_ROWS, columns=1024)
        return rows, columns

    def _weights(self, name: str) -> dict[str, torch.Tensor]:
        from transformers import AutoModelForCausalLM

        m = AutoModelForCausalLM.from_pretrained(_source(name), dtype=self.dtype)
        weights = {n: p.detach().to(self.device) for n, p in m.named_parameters()}
        del m
        return weights

    @torch.no_grad()
    def build(self, decoded: Decoded, seed: int = 0) -> None:
        """Write the candidate's merged weights into the resident model. On a GPU the work is queued and this
        returns before it is done (the next kernel that reads the weights waits for it)."""
        params = dict(self.model.named_parameters())
        if decoded.genome.method not in FUSED_METHODS:
            for name in self.names:
                params[name].copy_(merge_tensor(self, decoded, name, seed))
            return
        table = _parameter_table(self, decoded, seed)  # every tensor's weights, thresholds and keys: one copy
        for t, name in enumerate(self.names):
            merged = _merge_fused(self, decoded, name, table, t, params[name].dtype)
            params[name].copy_(merged.view(params[name].shape))

    def settle(self) -> None:
        """Wait until the queued work of `build` is done (so that its time is counted as the build's)."""
        if self.device == "cuda":
            torch.cuda.synchronize()


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
    table = _parameter_table(r, d, seed, names=[name])
    return _merge_fused(r, d, name, table, 0, torch.float32).view(base.shape)


# Task arithmetic, TIES and DARE-TIES as a few fused GPU kernels per tensor: the formulas of mergekit's
# generalized task arithmetic (sparsify, weight, sign consensus by sum, normalise by the kept weights), rewritten
# because mergekit's version stacks every delta, makes float masks and reads DARE's rescale factor on the host
# once per tensor and source (582 stalls of the GPU per 7B candidate), and because written as plain PyTorch the
# same formulas still made about 30 passes over float32 copies of the weights (0.7 s a 7B candidate on an H200).
# Here a tensor takes two passes (DARE's L1 norms, then the merge) that read the sources in their own dtype and
# write the result in the model's; inductor fuses each into one kernel (torch.compile on CUDA; the same
# functions run eagerly elsewhere). DARE's drop mask is a counter-based hash of (seed, source, tensor, element),
# so it needs no generator state, is the same on every device, and fuses. tests/evolve/test_inmemory.py holds
# the result equal to the straightforward formulation with mergekit's own rescale.
FUSED_METHODS = ("task_arithmetic", "ties", "dare_ties")
_MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # the multiplier of a well-tested 32-bit integer hash (small enough that int64 never overflows)


def _mix32(x: torch.Tensor) -> torch.Tensor:
    x = ((x >> 16) ^ x) * _MIX & _MASK32
    x = ((x >> 16) ^ x) * _MIX & _MASK32
    return (x >> 16) ^ x


def dare_keep(shape, key: torch.Tensor, threshold: torch.Tensor, device) -> torch.Tensor:
    """DARE's keep mask of a tensor of `shape` (an int: flat; (rows, columns): a matrix): element j of the
    flattened tensor is kept when hash(hash(j) ^ key) < threshold, where threshold = density * 2**32 (so each
    element is kept with probability `density`, independently of the others and of other keys)."""
    rows, columns = (1, shape) if isinstance(shape, int) else shape
    index = torch.arange(rows, device=device, dtype=torch.int64)[:, None] * columns
    index = index + torch.arange(columns, device=device, dtype=torch.int64)[None, :]
    keep = _mix32(_mix32(index) ^ key) < threshold
    return keep.view(-1) if isinstance(shape, int) else keep


def dare_key(seed: int, source: int, name: str) -> int:
    return zlib.crc32(f"{seed}/{source}/{name}".encode())


def _thresholds(densities) -> list[int]:
    return [min(max(int(round(float(x) * 2**32)), 0), 2**32) for x in densities]


def _parameter_table(r: Resident, d: Decoded, seed: int, names: list[str] | None = None) -> dict:
    """Per tensor (in `names` order, default every resident tensor): the sources' weights [T, n] and, for DARE,
    the drop thresholds and hash keys [T, n]; on the device in one copy each, read by row without a sync."""
    names = names or r.names
    n = len(r.sources)
    params = d.genome.params
    slots = [_group_and_set(d, name) for name in names]
    groups = [g for g, _ in slots]
    sets = [s for _, s in slots]
    weights = d.values[groups, :, sets, params.index("weight")]  # [T, n]
    table = {"weights": torch.tensor(weights, dtype=torch.float32).to(r.device)}
    if d.genome.method != "task_arithmetic":
        densities = d.values[groups, :, sets, params.index("density")]
        table["densities"] = densities.tolist()
        if d.genome.method == "dare_ties":
            keys = [[dare_key(seed, i, name) for i in range(n)] for name in names]
            thresholds = [_thresholds(row) for row in densities]
            table["keys"] = torch.tensor(keys, dtype=torch.int64).to(r.device)
            table["thresholds"] = torch.tensor(thresholds, dtype=torch.int64).to(r.device)
    return table


def _dare_scales(base, sources, keys, thresholds):
    """mergekit's DARE rescale (RescaleNorm.l1) per source: |delta|_1 / |kept delta|_1, or 1 where either is
    about zero; computed on the device."""
    b = base.float()
    scales = []
    for i, source in enumerate(sources):
        delta = source.float() - b
        keep = dare_keep(b.shape, keys[i], thresholds[i], b.device)
        # by row first (one program a row), then the rows: a single reduction over a 45M-element tensor would
        # run on a few programs only
        before = delta.abs().sum(1).sum()
        after = torch.where(keep, delta, 0.0).abs().sum(1).sum()
        small = (before < 1e-7) | (after < 1e-7)
        scales.append(torch.where(small, torch.ones_like(before), before / after))
    return torch.stack(scales)


def _combine(base, sources, weights, method: str, normalize: bool, out_dtype, kept=None, keys=None, thresholds=None,
             scales=None):  # fmt: skip
    b = base.float()
    deltas, total = [], None
    for i, source in enumerate(sources):
        delta = source.float() - b  # widened in the same pass
        if method == "dare_ties":
            keep = dare_keep(b.shape, keys[i], thresholds[i], b.device)
            delta = torch.where(keep, delta * scales[i], 0.0)
        elif method == "ties":
            delta = torch.where(kept[i], delta, 0.0)
        delta = delta * weights[i]
        deltas.append(delta)
        total = delta if total is None else total + delta
    if method == "task_arithmetic":
        mixed, divisor = total, weights.sum()
        divisor = torch.where(divisor.abs() < 1e-8, torch.ones_like(divisor), divisor)
    else:  # TIES sign consensus, as mergekit's get_mask(method="sum"): keep the deltas of the sum's sign
        positive = total >= 0
        mixed, divisor = None, None
        for i, delta in enumerate(deltas):
            keep = torch.where(positive, delta > 0, delta < 0)
            part, share = torch.where(keep, delta, 0.0), torch.where(keep, weights[i], 0.0)
            mixed = part if mixed is None else mixed + part
            divisor = share if divisor is None else divisor + share
        divisor = torch.where(divisor == 0, torch.ones_like(divisor), divisor)
    if normalize:
        mixed = mixed / divisor
    return (b + mixed).to(out_dtype)


_compiled: dict[str, object] = {}


def _kernel(name: str, fn, device: torch.device):
    """`fn` compiled once per process on CUDA (dynamic sizes: one compile serves every tensor); eager elsewhere."""
    if device.type != "cuda":
        return fn
    if name not in _compiled:
        _compiled[name] = torch.compile(fn, dynamic=True, fullgraph=True)
    return _compiled[name]


def _merge_fused(r: Resident, d: Decoded, name: str, table: dict, t: int, out_dtype) -> torch.Tensor:
    """Tensor `name` of the candidate, flattened, in `out_dtype`; `t` is its row in `table`."""
    method = d.genome.method
    # every tensor as a matrix (a vector as one row): the kernels work row by row
    base = r.base[name]
    base = base.reshape(base.shape[0] if base.dim() > 1 else 1, -1)
    sources = [s[name].view(base.shape) for s in r.sources]
    weights = table["weights"][t]
    extra = {}
    if method == "ties":
        kept = [
            _top_mask((s.float() - base.float()).view(-1), x)
            for s, x in zip(sources, table["densities"][t], strict=True)
        ]
        extra["kept"] = [k.view(base.shape) for k in kept]
    elif method == "dare_ties":
        keys, thresholds = table["keys"][t], table["thresholds"][t]
        scales = _kernel("dare_scales", _dare_scales, base.device)(base, sources, keys, thresholds)
        extra = {"keys": keys, "thresholds": thresholds, "scales": scales}
    combine = _kernel(f"combine-{method}-{d.normalize}-{out_dtype}", _combine, base.device)
    return combine(base, sources, weights, method, d.normalize, out_dtype, **extra)


def _top_mask(delta: torch.Tensor, density: float) -> torch.Tensor:
    """TIES's kept elements: the `density` share of largest magnitudes (torch.topk: the same set as mergekit's
    argsort unless values tie)."""
    if density >= 1:
        return torch.ones_like(delta, dtype=torch.bool)
    keep = torch.zeros_like(delta, dtype=torch.bool)
    if density <= 0 or delta.numel() == 0:
        return keep
    k = max(1, int(density * delta.numel()))
    keep[torch.topk(delta.abs(), k, sorted=False).indices] = True
    return keep
