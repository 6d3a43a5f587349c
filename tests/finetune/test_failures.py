"""Bad input and broken runs: a clear message, the run marked failed with its log, nothing registered half-done."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from rp_eval.finetune import job
from rp_eval.finetune.config import FinetuneSettings
from rp_eval.models import registry
from rp_eval.store import finetune as runs
from rp_eval.store import get_store

QUICK = dict(max_steps=2, batch_size=4, grad_accum=1, save_steps=1000, eval_fraction=0, stop_check_prompts=0)


def _failed(tiny_base, run_id: int) -> str:
    last = job.wait(run_id)
    assert last.status == "failed", last.log
    stored = runs.get_run(get_store(), run_id)
    assert stored.status == "failed" and stored.finished_at is not None
    assert "FAILED: " + stored.metrics["error"] in stored.log and "LoRA r=" in stored.log  # the log is kept
    assert [r.name for r in registry.list_models()] == [tiny_base]  # nothing registered
    assert not list(job.adapters_dir().iterdir()) and not list(job.run_folder(run_id).glob("*.tmp"))
    return stored.metrics["error"]


@pytest.mark.parametrize("where", ["checkpoints/checkpoint-", "adapter.tmp"])
def test_disk_full_while_saving(tiny_base, monkeypatch, where):
    """The disk fills up while a checkpoint is written, or while the finished adapter is."""
    import peft.peft_model

    real_save = peft.peft_model.safe_save_file

    def full_disk(tensors, filename, metadata=None):
        if where not in str(filename):
            return real_save(tensors, filename, metadata=metadata)
        Path(filename).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr(peft.peft_model, "safe_save_file", full_disk)
    error = _failed(tiny_base, job.start(FinetuneSettings(base_model=tiny_base, **QUICK)))
    assert error.startswith("out of disk space while writing") and where in error and "resume" in error


def test_read_only_models_folder(tiny_base, monkeypatch):
    """As root a chmod does not stop writes, so the read-only file system answers the move into place."""
    real_rename = Path.rename

    def read_only(self, target):
        if "adapters" in str(target):
            raise OSError(errno.EROFS, "Read-only file system", str(target))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", read_only)
    error = _failed(tiny_base, job.start(FinetuneSettings(base_model=tiny_base, adapter_name="ro", **QUICK)))
    assert error.startswith("can not write to") and "adapters/ro" in error and "read-only" in error


def test_out_of_memory_names_the_remedies(tiny_base, monkeypatch):
    from transformers import Trainer

    def oom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "train", oom)
    error = _failed(tiny_base, job.start(FinetuneSettings(base_model=tiny_base, **QUICK)))
    assert "out of GPU memory" in error and "batch size" in error and "QLoRA" in error


def test_resume_refusals(tiny_base):
    run_id = job.start(FinetuneSettings(base_model=tiny_base, **QUICK, target_modules=("nope",)))
    assert job.wait(run_id).status == "failed"
    with pytest.raises(job.FinetuneError, match="no checkpoint to resume from"):
        job.resume(run_id)
    with pytest.raises(job.FinetuneError, match="no fine-tuning run 99"):
        job.resume(99)
