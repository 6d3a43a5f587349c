"""The decode step's matrix products at the generation service's fixed row count (32: batch invariance runs
every step over all rows) against 1 and 64 rows, and under cuBLAS settings that change which kernel it picks:
microseconds each and the share of the 4.8 TB/s the weights' read would take at the H200's copy bandwidth.

    python benchmarks/gemm_rows.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.decode import mean_seconds  # noqa: E402

SHAPES = {
    "qkv": (4096, 12288),
    "o": (4096, 4096),
    "gate_up": (4096, 22016),
    "down": (11008, 4096),
    "head": (4096, 32000),
}


def us(fn, repeats: int = 200) -> float:
    return mean_seconds(fn, repeats, warm=10) * 1e6


def main() -> None:
    weights = {k: torch.randn(n, k_, device="cuda", dtype=torch.bfloat16) for k, (k_, n) in SHAPES.items()}
    out = {"preferred library at start": str(torch.backends.cuda.preferred_blas_library())}
    settings = {
        "default": {},
        "no reduced-precision reduction": {"reduced": False},
        "cublas": {"library": "cublas"},
    }
    for label, s in settings.items():
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = s.get("reduced", True)
        torch.backends.cuda.preferred_blas_library(s.get("library", "cublaslt"))
        for rows in (1, 32, 64):
            total = 0.0
            for name, w in weights.items():
                x = torch.randn(rows, w.shape[1], device="cuda", dtype=torch.bfloat16)
                t = us(lambda x=x, w=w: torch.nn.functional.linear(x, w))
                total += t * (32 if name != "head" else 1)
                out[f"{label} | {rows} rows | {name}"] = round(t, 1)
            out[f"{label} | {rows} rows | step's products, ms"] = round(total / 1000, 3)
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = True
    torch.backends.cuda.preferred_blas_library("cublaslt")
    for line in out.items():
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
