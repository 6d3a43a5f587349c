"""The same KV memory as rows and as blocks: how many requests run at once and how long they wait.

    python benchmarks/kv_layouts.py                      # a small random Llama on the CPU
    python benchmarks/kv_layouts.py --device cuda        # the same on a GPU (graphs captured at load)

16 requests of 100 prompt tokens + 60 new ones (random ids, greedy, no stops) submitted together to a service
whose KV cache holds 2 rows x 2,048 columns, then to one whose pool of blocks holds the same 4,096 tokens
(256 blocks of 16). Prints the largest batch, the wall time, the first-token p50 and the slowest first token,
and the pauses. Measures the layouts' scheduling, not the speed of a real model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rp_eval.chat.generate import GenerationSettings, StopRules  # noqa: E402
from rp_eval.chat.service import GenerationService  # noqa: E402


class _Ids:
    """A tokenizer stand-in: the reply's text is its ids (nothing here reads words)."""

    pad_token_id = 0

    def decode(self, ids, **kwargs):
        return " ".join(map(str, ids))

    def convert_ids_to_tokens(self, token):
        return str(token)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--requests", type=int, default=16)
    p.add_argument("--prompt", type=int, default=100)
    p.add_argument("--new", type=int, default=60)
    args = p.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=500, max_position_embeddings=2048)  # fmt: skip
    model = LlamaForCausalLM(config).to(args.device).eval()
    settings = GenerationSettings(temperature=0, max_new_tokens=args.new, engine="static", trim_to_sentence=False)
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(5, 500, (args.prompt,), generator=g).tolist() for _ in range(args.requests)]
    layouts = {"rows": {"rows": 2}, "blocks": {"rows": 32, "blocks": 2 * 2048 // 16}}
    for layout, sizes in layouts.items():
        service = GenerationService(model, columns=2048, kv_layout=layout, **sizes)
        service.warm_up()
        start = time.perf_counter()
        requests = [service.submit(_Ids(), ["p"], [ids], settings, StopRules(frozenset(), ())) for ids in prompts]
        results = [r.wait()[0] for r in requests]
        wall = time.perf_counter() - start
        firsts = sorted(r.first_token_seconds * 1000 for r in results)
        print(f"{layout:6} {sizes}: largest batch {service.largest_batch}, wall {wall:.2f} s, first token p50 "
              f"{firsts[len(firsts) // 2]:.0f} ms, slowest {firsts[-1]:.0f} ms, paused {service.paused}")  # fmt: skip
        service.close()


if __name__ == "__main__":
    main()
