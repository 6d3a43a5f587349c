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


def _defaults(comps: dict, inputs: list[int]) -> list:
    return [comps[c].get("props", {}).get("value") for c in inputs]


def test_no_event_of_the_raters_page_returns_another_raters_conversation(lab):
    """Finding 2: ruth chats (a secret in her message and so in the replies' context), opens a blind pair with it,
    scores one of her chat's replies; rita then runs every event of the raters' page with its default inputs,
    ruth's conversation number in the conversation list, and each source of the Rate tab's single reply (a
    stored chat reply, a repeat for agreement): no answer holds ruth's text."""
    from tests.reliability.test_lab_safety import _chat_inputs, _endpoints

    url, workspace, _ = lab
    ruth, rita = _login(url, "ruth"), _login(url, "rita")
    secret, session = "ルースの合言葉は青い鍵", uuid.uuid4().hex
    fns = _endpoints(ruth)
    _, done = _event(ruth, fns["respond"], _chat_inputs(f"{secret}です。"), session)
    assert done.get("success"), done
    ((conv_id,),) = _sql(workspace, "SELECT id FROM chat_conversations WHERE owner = 'ruth' ORDER BY id DESC LIMIT 1")
    _, done = _event(ruth, fns["rate_new_pair"], ["", "", f"{secret}を探して。", 16, 0.7], session)
    assert done.get("success"), done
    _, done = _event(ruth, fns["rate_new_single"], ["", "", "", "chat", 16, 0.7], session)
    assert "stored chat" in done["output"]["data"][2], done  # ruth's own chat reply is hers to score
    _, done = _event(ruth, fns["rate_save_scores"], [None, "", "", "", 3, 3, 3, 3], session)
    assert "saved" in done["output"]["data"][1], done
    assert _sql(workspace, "SELECT count(*) FROM rating_scores WHERE source_kind = 'chat_turn'") == [(1,)]

    config = _config(rita)
    comps = {c["id"]: c for c in config["components"]}

    def label(c: int) -> str:
        return str(comps[c].get("props", {}).get("label"))

    tried = 0
    for d in config["dependencies"]:
        if not d.get("backend_fn", True):
            continue
        data = _defaults(comps, d["inputs"])
        for i, c in enumerate(d["inputs"]):
            if "chat_conversation" in label(c):
                data[i] = conv_id  # ruth's conversation by its number
        sources = [i for i, c in enumerate(d["inputs"]) if "rate_source" in label(c)]
        for source in ("chat", "repeat", "evaluation") if sources else (None,):
            if source:
                data[sources[0]] = source
            raw, _ = _event(rita, d["id"], data, uuid.uuid4().hex)
            assert "合言葉" not in raw and "青い鍵" not in raw, (d.get("api_name"), source, raw[-800:])
            assert "Traceback" not in raw
            tried += 1
    assert tried >= 40, tried  # every event of the page, not a few
