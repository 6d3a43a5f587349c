"""A lab server (`python app.py --auth users.yaml`) tried again as an unfriendly rater and a careless admin would
(issue 29), over plain HTTP: the database typed into every path box, another rater's chat replies as the Rate
tab's source, bodies under every Content-Type, users changed while their sessions are open."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from rp_eval import auth
from tests.conftest import running_app
from tests.reliability.test_lab_safety import _config, _event, _sql

PASSWORDS = {"sato": "admin password", "rita": "rater password", "ruth": "another rater"}
# the page's text boxes that name a path: Fine-tune's data, the meta-evaluation's pairs, the Models tab's source,
# the Evaluate tab's weights file, the Evolve tab's export folder (by elem_id, or by label where it has none)
PATH_BOXES = {"ft-data", "meta-pairs", "model-source", "ev-export-folder"}
PATH_LABELS = {"Weights of the combined score (YAML path or a saved name; empty = defaults)"}


def _users(path: Path) -> Path:
    for name, password in PASSWORDS.items():
        auth.add_user(path, name, password, "admin" if name == "sato" else "rater")
    return path


@pytest.fixture(scope="module")
def lab(demo_build, tmp_path_factory):
    root = tmp_path_factory.mktemp("labtrust")
    workspace = root / "workspace"
    shutil.copytree(demo_build, workspace)
    users = _users(root / "users.yaml")
    env = {"RP_EVAL_API_KEY": "", "GRADIO_TEMP_DIR": str(root / "gradio-cache")}
    with running_app(workspace, root / "app.log", "--auth", str(users), env=env) as url:
        yield url, workspace, root


def _login(url: str, name: str, path: str = "", password: str | None = None) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=120)
    r = c.post(f"{path}/login", data={"username": name, "password": password or PASSWORDS[name]})
    assert r.status_code == 200 and r.json()["success"], r.text
    return c


def _server_pid(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    return int(subprocess.check_output(["pgrep", "-f", f"app.py --port {port}"]).split()[0])


def _locks(pid: int, files: list[Path]) -> list[str]:
    """The POSIX locks `pid` holds on `files` (by inode), as /proc/locks lists them."""
    inodes = {os.stat(f).st_ino for f in files if f.exists()}
    held = []
    for line in Path("/proc/locks").read_text().split("\n"):
        parts = line.split()
        if (
            len(parts) > 5
            and parts[1] == "POSIX"
            and parts[4] == str(pid)
            and int(parts[5].rsplit(":", 1)[1]) in inodes
        ):
            held.append(" ".join(parts[1:4] + parts[5:]))
    return sorted(held)


def _path_events(config: dict) -> list[tuple[int, list, list[int]]]:
    """(event number, default inputs, positions of the path boxes) for every event that takes a path box."""
    comps = {c["id"]: c for c in config["components"]}

    def is_path(c: dict) -> bool:
        props = c.get("props", {})
        return c.get("type") == "textbox" and (props.get("elem_id") in PATH_BOXES or props.get("label") in PATH_LABELS)

    found = []
    for d in config["dependencies"]:
        where = [i for i, comp in enumerate(d.get("inputs", [])) if is_path(comps[comp])]
        if where:
            defaults = [comps[comp].get("props", {}).get("value") for comp in d["inputs"]]
            found.append((d["id"], defaults, where))
    return found


def test_no_typed_path_reaches_the_database_and_the_server_keeps_its_locks(lab):
    """Finding 1: every event that takes a path box on the admin page is given the database, its -wal and the
    users file: each is refused, and the server still holds the SQLite locks it held before."""
    url, workspace, root = lab
    sato = _login(url, "sato", "/admin")
    db = workspace / "rp_eval.sqlite"
    pid = _server_pid(url)
    # a vote-free read opens the server's connection: the locks it holds are the ones that must stay
    _sql(workspace, "SELECT count(*) FROM chat_turns")
    sato.get("/admin/config")
    files = [db, db.with_name(db.name + "-shm"), db.with_name(db.name + "-wal")]
    before = _locks(pid, files)
    events = _path_events(_config(sato, "/admin"))
    boxes = {(fn, i) for fn, _, where in events for i in where}
    assert len(boxes) >= 5, boxes  # the test must try every kind of path box, not none
    refused = 0
    for fn, defaults, where in events:
        for target in (db, db.with_name(db.name + "-wal"), root / "users.yaml", workspace):
            for i in where:
                data = list(defaults)
                data[i] = str(target)
                raw, _ = _event(sato, fn, data, uuid.uuid4().hex, "/admin")
                assert "Traceback" not in raw
                refused += "server's own files" in raw
                assert _locks(pid, files) == before, (fn, i, target)
    assert refused >= 4 * 3, refused  # Fine-tune's preview and start, the pairs file, the model source at least
    assert before, "the server held no lock on the database: the test would show nothing"
