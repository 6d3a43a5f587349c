"""For a Hugging Face Space, whose disk is wiped on restart: push the ratings to a dataset repo on a schedule.

Off by default. `RP_EVAL_RATINGS_HUB_REPO=owner/name` (and a write token in `HF_TOKEN`) turns it on;
`RP_EVAL_RATINGS_HUB_MINUTES` sets how often (default 10). huggingface_hub's CommitScheduler commits a
folder in the background; here every scheduled round first rewrites that folder with the full votes and scores
as JSONL (under the scheduler's lock, so a half-written file is never committed). The store stays the source of
truth; the dataset is its copy.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from rp_eval import settings
from rp_eval.ratings.records import load_scores, load_votes, write_frame
from rp_eval.store import Store, get_store

_started: dict[str, object] = {}
_lock = threading.Lock()


def snapshot(store: Store, folder: Path, lock: threading.Lock | None = None) -> list[Path]:
    """Write votes.jsonl and scores.jsonl (every rating) into `folder`."""
    votes, scores = load_votes(store), load_scores(store)
    with lock or threading.Lock():
        return [write_frame(votes, folder / "votes.jsonl"), write_frame(scores, folder / "scores.jsonl")]


def start(repo_id: str, minutes: float = 10, store: Store | None = None, scheduler_class=None):
    """Start pushing the ratings to the dataset `repo_id` every `minutes`; once per repo per process."""
    with _lock:
        if repo_id in _started:
            return _started[repo_id]
        if scheduler_class is None:
            from huggingface_hub import CommitScheduler as scheduler_class
        folder = settings.home() / "hub_sync" / repo_id.replace("/", "__")
        folder.mkdir(parents=True, exist_ok=True)
        store = store or get_store()
        snapshot(store, folder)

        class RatingsScheduler(scheduler_class):
            def push_to_hub(self):
                snapshot(store, folder, self.lock)
                return super().push_to_hub()

        scheduler = RatingsScheduler(
            repo_id=repo_id, folder_path=folder, every=minutes, repo_type="dataset", path_in_repo="ratings"
        )
        _started[repo_id] = scheduler
        return scheduler


def start_from_env():
    """The scheduler when `RP_EVAL_RATINGS_HUB_REPO` is set, else None (the default: nothing leaves the machine)."""
    repo = os.environ.get("RP_EVAL_RATINGS_HUB_REPO", "").strip()
    if not repo or settings.offline():
        return None
    return start(repo, float(os.environ.get("RP_EVAL_RATINGS_HUB_MINUTES", "10")))
