"""`@on_gpu`: Hugging Face ZeroGPU's `spaces.GPU` where the `spaces` package is present, else a no-op.

Applied to the UI handlers that run models, so on a ZeroGPU Space each call borrows a GPU for its duration.
"""

from __future__ import annotations

from collections.abc import Callable

try:
    import spaces

    on_gpu: Callable = spaces.GPU
except ImportError:  # not on a Space

    def on_gpu(fn: Callable | None = None, **_options: object) -> Callable:
        return fn if fn is not None else (lambda f: f)
