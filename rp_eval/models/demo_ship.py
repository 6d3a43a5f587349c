"""The demo models shipped in the repository (`prompts/demo/models/`), so that a first start copies them into the
workspace in a few seconds instead of training them for minutes on a CPU.

They are what `demo._build` made from `prompts/demo/corpus.jsonl` (the same code a first start runs when nothing
is shipped), stored with their weights in float16 to halve the repository's share (about 2.5 MB a model) and
installed as float32, the dtype they were trained in and run in. `READY` holds the seed demos' recipe fingerprint
and `READY-findings` the finding demos' (`demo._fingerprint()`, `demo._findings_fingerprint()`): a first start
installs them only when both equal the current recipe's, and trains otherwise, so a changed corpus or recipe is
never answered with stale weights. `MANIFEST.json` holds each file's sha256.

Rebuild them after changing the corpus or the recipe (a CI test fails until then):

    python -m rp_eval.models.demo_ship            # trains in a temporary workspace, then writes prompts/demo/models
    python -m rp_eval.models.demo_ship --from DIR  # exports a current build (DIR = <workspace>/models/demo)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rp_eval.models import demo

SHIPPED = Path(__file__).resolve().parents[2] / "prompts" / "demo" / "models"
WEIGHTS = "model.safetensors"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped_ready(folder: Path = SHIPPED) -> bool:
    """True when `folder` holds every demo model, built from the current recipe, with the files its manifest names."""
    try:
        if (folder / "READY").read_text().strip() != demo._fingerprint():
            return False
        if (folder / demo.FINDINGS_READY).read_text().strip() != demo._findings_fingerprint():
            return False
        manifest = json.loads((folder / "MANIFEST.json").read_text())
    except (OSError, ValueError):
        return False
    return all(WEIGHTS in manifest.get(spec.name, {}) for spec in demo.ALL_DEMOS) and all(
        (folder / name / file).is_file() for name, files in manifest.items() for file in files
    )


def _convert(source: Path, target: Path, dtype: str) -> None:
    """Copy a safetensors file with every floating tensor cast to `dtype` (numpy: no torch import needed)."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    tensors = {k: v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v for k, v in load_file(source).items()}
    save_file(tensors, target, metadata={"format": "pt"})


def install(
    target: Path,
    progress: Callable[[str, int, int], None] | None = None,
    source: Path = SHIPPED,
    specs: list | None = None,
) -> None:
    """Write the shipped demo models into `target` (a fresh folder), weights as float32: all of them, or only the
    finding demos (`specs=demo.FINDINGS`, for a workspace whose seed demos are current)."""
    began = time.perf_counter()
    specs = demo.ALL_DEMOS if specs is None else specs
    total = len(specs)
    for i, spec in enumerate(specs):
        if progress:
            progress(f"{spec.name}: copying the shipped weights", i, total)
        (target / spec.name).mkdir(parents=True)
        for file in sorted((source / spec.name).iterdir()):
            if file.name == WEIGHTS:
                _convert(file, target / spec.name / WEIGHTS, "float32")
            else:
                shutil.copy2(file, target / spec.name / file.name)
    seconds = round(time.perf_counter() - began, 1)
    groups = [("BUILD.json", "READY", demo._fingerprint(), demo.DEMOS)]
    groups.append((demo.FINDINGS_BUILD, demo.FINDINGS_READY, demo._findings_fingerprint(), demo.FINDINGS))
    for info_file, ready, fingerprint, group in groups:
        if any(spec in specs for spec in group):
            info = json.loads((source / info_file).read_text())
            info.update(shipped=True, install_seconds=seconds)
            (target / info_file).write_text(json.dumps(info))
            (target / ready).write_text(fingerprint)
    if progress:
        progress("demo models ready", total, total)


def export(built: Path, dest: Path = SHIPPED) -> dict[str, dict[str, str]]:
    """Write a current demo build (`built`, a `<workspace>/models/demo` folder) into `dest` for shipping.
    Returns the manifest (file → sha256 per model)."""
    if (built / "READY").read_text().strip() != demo._fingerprint() or (
        built / demo.FINDINGS_READY
    ).read_text().strip() != demo._findings_fingerprint():
        raise ValueError(f"{built} was not built from the current recipe (its READY differs): build it again")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    manifest: dict[str, dict[str, str]] = {}
    for spec in demo.ALL_DEMOS:
        (tmp / spec.name).mkdir(parents=True)
        for file in sorted((built / spec.name).iterdir()):
            if file.name == WEIGHTS:
                _convert(file, tmp / spec.name / WEIGHTS, "float16")
            else:
                shutil.copy2(file, tmp / spec.name / file.name)
        manifest[spec.name] = {f.name: _sha256(f) for f in sorted((tmp / spec.name).iterdir())}
    for info_file in ("BUILD.json", demo.FINDINGS_BUILD):
        info = {
            k: v
            for k, v in json.loads((built / info_file).read_text()).items()
            if k not in ("shipped", "install_seconds")
        }
        (tmp / info_file).write_text(json.dumps(info))
    (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    (tmp / "READY").write_text(demo._fingerprint())
    (tmp / demo.FINDINGS_READY).write_text(demo._findings_fingerprint())
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the demo models and write them into prompts/demo/models.")
    parser.add_argument("--from", dest="built", type=Path, help="a current build to export instead of training")
    parser.add_argument(
        "--findings-only",
        action="store_true",
        help="keep the shipped seed demos (current recipe) and train only the finding demos on them (minutes)",
    )
    args = parser.parse_args(argv)
    if args.built:
        export(args.built)
    elif args.findings_only:
        with tempfile.TemporaryDirectory() as home:
            os.environ["RP_EVAL_HOME"] = home
            if (SHIPPED / "READY").read_text().strip() != demo._fingerprint():
                raise SystemExit("the shipped seed demos are not of the current recipe: rebuild them all")
            tmp = demo._fresh_tmp()
            install(tmp, specs=demo.DEMOS)
            demo._put_in_place(tmp)
            demo._build_findings(
                lambda message, done, total: print(f"\r{message} ({done}/{total})", end="", flush=True)
            )
            print()
            export(demo.demo_dir())
    else:
        with tempfile.TemporaryDirectory() as home:
            os.environ["RP_EVAL_HOME"] = home
            demo._build(lambda message, done, total: print(f"\r{message} ({done}/{total})", end="", flush=True))
            print()
            export(demo.demo_dir())
    print(f"wrote {SHIPPED} (fingerprint {demo._fingerprint()})")


if __name__ == "__main__":
    main()
