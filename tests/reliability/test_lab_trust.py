"""A lab server (`python app.py --auth users.yaml`) tried again as an unfriendly rater and a careless admin would
(issue 29), over plain HTTP: the database typed into every path box, another rater's chat replies as the Rate
tab's source, bodies under every Content-Type, users changed while their sessions are open."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from rp_eval import auth
from tests.conftest import ROOT, running_app
from tests.reliability.test_lab_safety import _config, _event, _sql

PASSWORDS = {"sato": "admin password", "rita": "rater password", "ruth": "another rater"}
# the page's text boxes that name a path: Fine-tune's data, the meta-evaluation's pairs, the Models tab's source,
# the Evaluate tab's weights file, the Evolve tab's export folder (by elem_id, or by label where it has none)
PATH_BOXES = {"ft-data", "meta-pairs", "model-source", "ev-export-folder"}
API_KEY = "trust-key"
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
    env = {"RP_EVAL_API_KEY": API_KEY, "GRADIO_TEMP_DIR": str(root / "gradio-cache")}
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


SURROGATE_BODY = '{"model": "demo-mistral", "messages": [{"role": "user", "content": "\\ud800"}], "max_tokens": 4}'
TYPES = (
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/html",
    "text/plain",
    "application/vnd.api+json",
)


def _openai_error(r: httpx.Response) -> dict:
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return error


def test_every_body_is_checked_whatever_its_content_type(lab):
    """Finding 3: a lone surrogate in /v1/chat/completions declared as a form, multipart, HTML, plain text or a
    `+json` type; event number 50000 and -1 in queue/join under each type (a signed-in rater); a lone surrogate
    in a form field of the login. Each answers 4xx in OpenAI's error shape naming what is wrong, never a 500."""
    url, _, root = lab
    key = {"authorization": f"Bearer {API_KEY}"}
    for kind in TYPES:
        r = httpx.post(
            f"{url}/v1/chat/completions", content=SURROGATE_BODY, headers={**key, "content-type": kind}, timeout=60
        )
        error = _openai_error(r)
        if kind == "application/vnd.api+json":  # JSON by its type: read, and the surrogate named
            assert r.status_code == 400 and "\\ud800" in error["message"], (kind, r.text)
        else:
            assert r.status_code == 415 and error["code"] == "unsupported_media_type", (kind, r.text)
            assert kind.split(";")[0] in error["message"] and "application/json" in error["message"], error
    r = httpx.post(f"{url}/v1/chat/completions", content=SURROGATE_BODY, headers=key, timeout=60)  # no type at all
    assert r.status_code == 415, r.text
    r = httpx.post(
        f"{url}/v1/chat/completions",
        content=SURROGATE_BODY,
        headers={**key, "content-type": "text/plain", "accept-language": "ja"},
        timeout=60,
    )
    assert "JSON の本体" in _openai_error(r)["message"], r.text  # in the client's language
    rita = _login(url, "rita")
    for fn in (50000, -1):
        join = {"data": [], "fn_index": fn, "session_hash": uuid.uuid4().hex, "event_data": None, "trigger_id": None}
        for kind in TYPES:
            r = rita.post("/gradio_api/queue/join", content=json.dumps(join), headers={"content-type": kind})
            assert r.status_code == 404 and f"no event number {fn}" in _openai_error(r)["message"], (fn, kind, r.text)
    r = httpx.post(
        f"{url}/login",
        content="username=%ED%A0%80&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    assert r.status_code == 400 and "not valid UTF-8" in _openai_error(r)["message"], r.text
    assert rita.get("/config").status_code == 200  # the server goes on
    log = (root / "app.log").read_text()
    # (the log may hold other events' tracebacks of this module; none from the page's event look-up or the API)
    assert "KeyError" not in log and "fns[body.fn_index]" not in log and "rp_eval/api.py" not in log, log[-3000:]


def _cli_users(users: Path, *args: str, password: str | None = None) -> None:
    """`rp-eval users ...` as an admin runs it in a shell, the password on standard input."""
    command = [sys.executable, "-m", "rp_eval", "users", *args, "--file", str(users)]
    if password is not None:
        command.append("--password-stdin")
    subprocess.run(command, input=(password or "") + "\n", text=True, check=True, capture_output=True, cwd=ROOT)


def test_sessions_end_when_their_user_changes(demo_build, tmp_path):
    """Finding 4: rita, ruth and ada (an admin) are signed in; an admin then gives rita a new password, removes
    ruth and makes ada a rater with `rp-eval users`. At their next request each old cookie is refused (401, the
    login page again), ada's admin events with it; rita's new password and ada's rater login work."""
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_build, workspace)
    users = _users(tmp_path / "users.yaml")
    auth.add_user(users, "ada", "admin two password", "admin")
    env = {"RP_EVAL_API_KEY": "", "GRADIO_TEMP_DIR": str(tmp_path / "gradio-cache")}
    with running_app(workspace, tmp_path / "app.log", "--auth", str(users), env=env) as url:
        rita, ruth, sato = _login(url, "rita"), _login(url, "ruth"), _login(url, "sato", "/admin")
        ada = _login(url, "ada", "/admin", "admin two password")
        admin_events = {d["api_name"]: d["id"] for d in _config(ada, "/admin")["dependencies"] if d.get("api_name")}
        fn = admin_events["models_refresh"] if "models_refresh" in admin_events else next(iter(admin_events.values()))
        for c, page in ((rita, ""), (ruth, ""), (ada, "/admin"), (sato, "/admin")):
            assert c.get(f"{page}/gradio_api/login_check").status_code == 200
        _cli_users(users, "add", "rita", "--replace", password="a new password")
        _cli_users(users, "remove", "ruth")
        _cli_users(users, "add", "ada", "--role", "rater", "--replace", password="admin two password")
        for c, page in ((rita, ""), (ruth, ""), (ada, "/admin")):
            assert c.get(f"{page}/gradio_api/login_check").status_code == 401, page
            assert c.get(f"{page}/config").status_code == 401, page
        join = {"data": [], "fn_index": fn, "session_hash": uuid.uuid4().hex, "event_data": None, "trigger_id": None}
        r = ada.post("/admin/gradio_api/queue/join", json=join)
        assert r.status_code == 401, r.text  # a demoted admin runs no admin event
        assert sato.get("/admin/gradio_api/login_check").status_code == 200  # unchanged users keep their sessions
        r = httpx.post(f"{url}/admin/login", data={"username": "ada", "password": "admin two password"})
        assert r.status_code == 400  # the admin page no longer lets ada in
        _login(url, "ada", "", "admin two password")  # the raters' page does
        assert _login(url, "rita", "", "a new password").get("/gradio_api/login_check").status_code == 200
        log = (tmp_path / "app.log").read_text()
        assert "session ended (the user changed in the users file) for name 'ruth'" in log


def test_csv_exports_neutralise_formula_cells(lab):
    """Finding 9 (CSV): rita's blind pair opens with `=cmd|' /C calc'!A0`, she votes and exports her raw ratings
    as CSV from the Leaderboard tab: the cell starts with `'` (shown as text by a spreadsheet, never run)."""
    import csv

    from tests.reliability.test_lab_safety import _endpoints

    url, workspace, _ = lab
    rita = _login(url, "rita")
    fns, session = _endpoints(rita), uuid.uuid4().hex
    formula = "=cmd|' /C calc'!A0"
    _, done = _event(rita, fns["rate_new_pair"], ["", "", formula, 16, 0.7], session)
    assert done.get("success"), done
    _, done = _event(rita, fns["rate_vote_tie"], [None, "", ""], session)
    assert done.get("success"), done
    _, done = _event(rita, fns["leaderboard_export"], ["raw", "csv", "", "", [], "", "", 1000], session)
    files = [f["path"] for f in done["output"]["data"][0]]
    votes = next(Path(p) for p in files if Path(p).name == "votes.csv")
    prompts = [row["prompt"] for row in csv.DictReader(votes.open(encoding="utf-8"))]
    assert f"'{formula}" in prompts, prompts
    assert not any(p.startswith(("=", "+", "-", "@")) for p in prompts), prompts
