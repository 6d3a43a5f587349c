"""The decode step of a Llama- or Mistral-style model in a few large kernels, over the model's own weights.

transformers' decoder layer launches about 45 kernels per layer for one new token (the RMSNorm alone is six,
rotary positions ten), so even replayed from a CUDA graph a 7B step spent nearly half its time between
kernels (8.2 ms against a 4.5 ms memory floor on an H100). Here a layer is two functions that inductor
compiles once per batch shape: residual add + RMSNorm + Q/K/V + rotary, and output projection + residual add +
RMSNorm + gated MLP. Attention and the cache write stay outside them (their shapes change with the attended
length; compiling them would recompile per length). The arithmetic follows transformers' modules step for
step (norm in float32, rotary and residuals in the model's dtype), and the weights are the model's own
tensors, read at every step, so writing new weights into the model (evolution candidates) needs nothing here.

Written by hand rather than taken from a library because no maintained library offers a compiled decode step
that can be replayed inside the project's own CUDA graph over its own static cache (vLLM and SGLang bring their
own server, scheduler and cache, and can not be installed on every machine this runs on).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rp_eval.chat.attention import available, decode_attention, decode_attention_blocks


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def attention_in(residual, delta, norm, wqkv, cos, sin, eps: float, heads: int, kv_heads: int):
    """residual + delta, then the normed input through the joined Q/K/V projection, rotated:
    q [b, heads, s, d], k and v [b, kv_heads, s, d]."""
    residual = residual + delta
    x = _rms(residual, norm, eps)
    b, s, _ = x.shape
    qkv = F.linear(x, wqkv).view(b, s, heads + 2 * kv_heads, -1).transpose(1, 2)
    q, k, v = qkv.split((heads, kv_heads, kv_heads), dim=1)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return residual, _rotate(q, cos, sin), _rotate(k, cos, sin), v.contiguous()


def attention_out_mlp(attended, residual, wo, norm, wgu, wd, eps: float):
    """Output projection and residual, then the gated MLP (joined gate/up projection) on the normed sum;
    returns (residual, mlp output)."""
    b, _, s, _ = attended.shape
    residual = residual + F.linear(attended.transpose(1, 2).reshape(b, s, -1), wo)
    x = _rms(residual, norm, eps)
    gate, up = F.linear(x, wgu).chunk(2, dim=-1)
    return residual, F.linear(F.silu(gate) * up, wd)


def final(residual, delta, norm, head, eps: float):
    return F.linear(_rms(residual[:, -1:] + delta[:, -1:], norm, eps), head)[:, -1, :]


def _join(*linears) -> torch.Tensor:
    """One weight for several projections that read the same input (Q, K, V; gate and up), so a step runs one
    larger matrix product instead of three small ones. The modules' own weights become views into it: no
    memory is added, and weights written into the model later (`param.copy_`) land in the joined tensor."""
    joined = torch.cat([m.weight.detach() for m in linears])
    start = 0
    for m in linears:
        rows = m.weight.shape[0]
        m.weight.data = joined[start : start + rows]
        start += rows
    return joined


def supports_fused(model) -> bool:
    """Plain Llama/Mistral layers: SiLU MLP, no projection biases, untouched module classes."""
    c = model.config
    if (
        getattr(c, "hidden_act", "silu") != "silu"
        or getattr(c, "attention_bias", False)
        or getattr(c, "mlp_bias", False)
    ):
        return False
    inner = getattr(model, "model", None)
    return inner is not None and hasattr(inner, "layers") and hasattr(inner, "rotary_emb")


class FusedStep:
    """Decode steps and prefills for the static engine: ids and positions [b, s], the engine's cache and
    additive mask [b, 1, s, attended].

    `compile=True` (on CUDA) puts the functions through `torch.compile` (inductor, without CUDA graphs of its
    own: the engine captures the whole decode step in its graph): once per batch size for the decode step, and
    with a dynamic length for prefills. On CPU they run as they are, which is how the tests check that these
    steps equal transformers' forward."""

    def __init__(self, model, compile: bool) -> None:
        c = model.config
        inner = model.model
        self.heads = c.num_attention_heads
        self.kv_heads = getattr(c, "num_key_value_heads", None) or self.heads
        self.eps = c.rms_norm_eps
        self.scale = (getattr(c, "head_dim", None) or c.hidden_size // self.heads) ** -0.5
        self.model, self.embed, self.rotary = model, inner.embed_tokens, inner.rotary_emb
        # on CUDA, decode attention whose numbers for a row never depend on the other rows (rp_eval/chat/attention.py)
        self.invariant = available(next(model.parameters()).device)
        # joined once per model and kept on it: a second engine over the same model must not join again (that
        # would move the weights and leave the first engine's captured graphs reading freed memory)
        self.layers = getattr(model, "_rp_eval_fused_layers", None)
        if self.layers is None:
            self.layers = model._rp_eval_fused_layers = [
                (
                    layer.input_layernorm.weight,
                    _join(layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj),
                    layer.self_attn.o_proj.weight,
                    layer.post_attention_layernorm.weight,
                    _join(layer.mlp.gate_proj, layer.mlp.up_proj),
                    layer.mlp.down_proj.weight,
                )
                for layer in inner.layers
            ]
        self.step_fns = self.prefill_fns = (attention_in, attention_out_mlp, final)
        if compile:
            import torch._dynamo

            # one compiled graph per function, batch size and model shape; several models may be loaded
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            torch._dynamo.config.accumulated_recompile_limit = max(
                torch._dynamo.config.accumulated_recompile_limit, 1024
            )
            self.step_fns = tuple(torch.compile(f, fullgraph=True, dynamic=False) for f in self.step_fns)
            self.prefill_fns = tuple(torch.compile(f, fullgraph=True, dynamic=True) for f in self.prefill_fns)

    def __call__(
        self, ids: torch.Tensor, positions: torch.Tensor, cache, mask: torch.Tensor, attend_rows: int | None = None
    ) -> torch.Tensor:
        """Logits of the last position [b, vocab]. With `attend_rows`, attention runs over the first rows only
        (the rest get zeros): the projections keep one shape for any number of rows in use."""
        attention_in_, attention_out_mlp_, final_ = self.step_fns if ids.shape[1] == 1 else self.prefill_fns
        residual = self.embed(ids)
        cos, sin = self.rotary(residual, positions)
        delta = torch.zeros_like(residual)
        b, s = ids.shape
        groups = self.heads // self.kv_heads
        rows = b if attend_rows is None else attend_rows
        invariant = s == 1 and self.invariant and getattr(cache, "lengths", None) is not None
        # every layer's attention output in one buffer whose rows past `rows` stay zero (no pad a layer)
        out = None
        for i, (norm1, wqkv, wo, norm2, wgu, wd) in enumerate(self.layers):
            residual, q, k, v = attention_in_(
                residual, delta, norm1, wqkv, cos, sin, self.eps, self.heads, self.kv_heads
            )
            keys, values = cache.update(k, v, i)
            if invariant and out is None:
                out = q.new_zeros(q.shape)
            q = q[:rows]
            if invariant and getattr(cache, "tables", None) is not None:  # the blocks layout, read in place
                keys, values = cache.pools(i)
                decode_attention_blocks(
                    q, keys, values, cache.tables, cache.bias, cache.lengths, self.scale, cache.view, out, cache.counts
                )
                attended = out
            elif invariant:
                decode_attention(
                    q, *cache.rows_of(i), cache.bias, cache.lengths, self.scale, cache.view, out, cache.counts
                )
                attended = out
            elif s == 1 and groups > 1:  # a group's query heads as that group's queries: each K/V head read once
                attended = F.scaled_dot_product_attention(
                    q.reshape(rows, self.kv_heads, groups, -1), keys, values, attn_mask=mask, scale=self.scale
                ).reshape(rows, self.heads, 1, -1)
            else:  # no mask: a prompt without padding, causal by SDPA's own flag
                attended = F.scaled_dot_product_attention(
                    q, keys, values, attn_mask=mask, scale=self.scale, enable_gqa=groups > 1, is_causal=mask is None
                )
            if attended.shape[0] < b:
                attended = F.pad(attended, (0, 0, 0, 0, 0, 0, 0, b - rows))
            residual, delta = attention_out_mlp_(attended, residual, wo, norm2, wgu, wd, self.eps)
        inner = self.model.model
        return final_(residual, delta, inner.norm.weight, self.model.lm_head.weight, self.eps)
