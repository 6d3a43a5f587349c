"""Running a recipe with mergekit's library API (`run_merge` with `MergeOptions`) and registering the result.

The merge runs in a background thread and reports progress through a generator (the tab and the CLI both
consume it); closing the generator or setting `cancel` stops it at the next tensor. mergekit reads tensors
lazily from safetensors, one at a time, so two 7B models merge with far less RAM than their size; the math
runs on the GPU when there is one. The output goes to a temporary folder in the workspace and is moved into
place only when complete; then it is registered as kind "merged" with its parents and the recipe. A failed or
cancelled merge leaves nothing behind.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from rp_eval import processes, settings
from rp_eval.errors import RpEvalError, Said
from rp_eval.merge import recipe as recipes

_ONE_AT_A_TIME = threading.Lock()  # the progress hook is process-wide, and two merges would fight for memory


class MergeError(RpEvalError):
    """A merge that could not start or failed; nothing was registered."""


class MergeCancelled(MergeError):
    pass


@dataclass(frozen=True)
class MergeProgress:
    stage: str  # checking | loading | merging | saving | done
    done: int
    total: int
    message: str
    model: str = ""  # the registered name, when done
    folder: str = ""
    seconds: float = 0.0

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class _Tracker:
    """Stands in for `tqdm.tqdm` inside mergekit's executor: reports each task and checks for cancellation."""

    report = None
    cancel: threading.Event | None = None

    def __init__(self, iterable=None, **_kwargs) -> None:
        self.items = list(iterable or [])

    def __iter__(self):
        total = len(self.items)
        for i, item in enumerate(self.items):
            if _Tracker.cancel is not None and _Tracker.cancel.is_set():
                raise MergeCancelled("the merge was cancelled; nothing was registered")
            if _Tracker.report and (i % max(1, total // 200) == 0):
                _Tracker.report(i, total)
            yield item


def _source(name: str) -> str:
    from rp_eval.store import get_store

    row = get_store().get_model(name)
    return row.source if row is not None else name


def _size_of(source: str) -> int:
    from rp_eval.models.registry import _weights_summary

    path = Path(source)
    return _weights_summary(path)[1] if path.is_dir() else 0


def output_folder(name: str) -> Path:
    stem = re.sub(r"[^\w.-]+", "-", name).strip("-.")
    if not stem:
        raise MergeError(key="err_merge_no_name")
    return settings.models_dir() / "merged" / stem


def preflight(text: str, name: str, confined: bool = False) -> tuple[dict, list[str], Path]:
    """Everything that can be known before work starts: the recipe, the name, the parents, the disk. `confined`
    (the page): every path the recipe names must lie in the allowed folders."""
    from rp_eval.store import get_store

    data = recipes.load_yaml(text)
    if confined:
        recipes.confine(data)
    recipes.validate(data)
    if not name.strip():
        raise MergeError(key="err_merge_no_name")
    if get_store().get_model(name.strip()) is not None:
        raise MergeError(key="err_merge_name_taken", name=name.strip())
    final = output_folder(name.strip())
    if final.exists():
        raise MergeError(key="err_merge_folder_exists", folder=final)
    config = recipes.parse(data)
    refs = [str(m) for m in config.referenced_models()]
    parents = _parents(recipes.sources(config))
    needed = int(max((_size_of(_source(r)) for r in refs), default=0) * 1.1)
    free = shutil.disk_usage(settings.models_dir()).free
    if needed > free:
        raise MergeError(
            key="err_merge_disk",
            folder=settings.models_dir(),
            needed=f"{needed / 2**30:.1f}",
            free=f"{free / 2**30:.1f}",
        )
    return data, parents, final


def _parents(sources: list[str]) -> list[str]:
    """The registered models among a recipe's sources (every model, adapter and tokenizer it reads), a folder
    counted as the registered model kept there; the sources themselves go into `made_by` whole."""
    from rp_eval.store import get_store

    store = get_store()
    by_folder = {}
    for row in store.list_models():
        try:
            by_folder.setdefault(str(Path(row.source).resolve()), row.name)
        except (OSError, ValueError):
            continue
    names = []
    for source in sources:
        if store.get_model(source) is not None:
            names.append(source)
            continue
        try:
            folder = str(Path(source).expanduser().resolve())
        except (OSError, ValueError):
            continue
        if folder in by_folder:
            names.append(by_folder[folder])
    return list(dict.fromkeys(names))


def sweep_leftovers(folder: Path) -> list[Path]:
    """Remove the temporary output folders of merges whose process is gone (killed mid-merge: nothing of it was
    registered, but its half-written folder stays on disk); a merge running in another process is left alone."""
    removed = []
    for tmp in folder.glob(".tmp-*") if folder.is_dir() else []:
        pid = tmp.name.rsplit("-", 2)[-2] if tmp.name.count("-") >= 3 else ""
        if not pid.isdigit() or processes.pid_alive(int(pid)):
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    return removed


def merge(
    text: str, name: str, cancel: threading.Event | None = None, seed: int | None = 0, confined: bool = False
) -> Iterator[MergeProgress]:
    """Run a recipe (mergekit YAML naming registered models, folders or hub ids) into a registered model."""
    import mergekit.graph
    import torch
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    from rp_eval.models.registry import add_model

    name = name.strip()
    yield MergeProgress("checking", 0, 1, Said("merge_checking"))
    data, parents, final = preflight(text, name, confined)
    config = recipes.parse(recipes.map_models(data, _source))
    cancel = cancel or threading.Event()
    events: queue.Queue = queue.Queue()
    sweep_leftovers(final.parent)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    options = MergeOptions(
        device="auto", lazy_unpickle=True, copy_tokenizer=True, random_seed=seed, quiet=True, write_model_card=True
    )

    def work() -> None:
        try:
            run_merge(config, str(tmp), options, config_source=recipes.to_yaml(recipes.map_models(data, _source)))
            events.put(("ok", None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which raises it
            events.put(("error", err))

    start = time.perf_counter()
    with _ONE_AT_A_TIME:
        saved_tqdm = mergekit.graph.tqdm
        _Tracker.cancel, _Tracker.report = cancel, lambda i, n: events.put(("progress", (i, n)))
        mergekit.graph.tqdm = SimpleNamespace(tqdm=_Tracker)
        device = "GPU" if torch.cuda.is_available() else "CPU"
        try:
            thread = threading.Thread(target=work, name=f"merge-{name}", daemon=True)
            thread.start()
            yield MergeProgress("loading", 0, 1, Said("merge_loading", device=device, method=config.merge_method))
            while True:
                kind, value = events.get()
                if kind == "progress":
                    done, total = value
                    yield MergeProgress("merging", done, total, Said("merge_tensors", done=done, total=total))
                elif kind == "error":
                    raise (
                        value if isinstance(value, MergeError) else MergeError(f"the merge failed: {value}")
                    ) from value
                else:
                    break
        except BaseException:
            cancel.set()
            thread.join()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            mergekit.graph.tqdm = saved_tqdm
            _Tracker.cancel = _Tracker.report = None
    seconds = time.perf_counter() - start
    yield MergeProgress("saving", 1, 1, Said("merge_saving"))
    row = _finish(tmp, final, name, data, parents, config.merge_method, seconds, add_model)
    done = Said("merge_done", name=row.name, seconds=f"{seconds:.1f}")
    yield MergeProgress("done", 1, 1, done, row.name, str(final), seconds)


def _finish(tmp: Path, final: Path, name: str, data: dict, parents: list[str], method: str, seconds: float, add_model):
    from importlib.metadata import version

    text = recipes.to_yaml(data)
    (tmp / "rp_eval_recipe.yaml").write_text(text, encoding="utf-8")
    every = recipes.sources(recipes.parse(data))  # hub ids and folders too, not only registered parents
    sources = "\n".join(f"- {p}: `{_source(p)}`" for p in every)
    with open(tmp / "README.md", "a", encoding="utf-8") as card:
        card.write(
            f"\n\n## rp_eval\n\nRegistered as `{name}`, merged with {method} in {seconds:.1f} s from:\n{sources}\n"
        )
    try:
        tmp.replace(final)
        return add_model(
            str(final),
            name,
            kind="merged",
            parents=parents,
            made_by={
                "tool": "mergekit",
                "mergekit": version("mergekit"),
                "method": method,
                "sources": every,
                "recipe": text,
                "seconds": round(seconds, 2),
            },
        )
    except BaseException:
        shutil.rmtree(final if final.exists() else tmp, ignore_errors=True)
        raise


def merge_all(text: str, name: str, report=None) -> MergeProgress:
    """Run `merge` to the end (the CLI and tests); `report(progress)` sees every step."""
    last = None
    for last in merge(text, name):
        if report:
            report(last)
    return last
