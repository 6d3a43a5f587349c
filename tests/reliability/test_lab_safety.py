"""A lab server (`python app.py --auth users.yaml`) tried as an unfriendly rater would, over plain HTTP (httpx):
file inputs given server paths, the database and users file asked for by URL, the vote-loss sequence (the
database named in a file event, an online backup, more votes, a kill), another rater's chats, the pages and
API descriptions before a login, bad event numbers, and login timing and slowdown."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from rp_eval import auth
from tests.conftest import ROOT, running_app

MODELS = ("demo-llama-a", "demo-llama-b", "demo-mistral", "demo-llama-eos", "demo-mistral-long")
PASSWORDS = {"sato": "admin password", "rin": "rater password", "ken": "another rater"}
TIMED = [f"timed{i}" for i in range(4)]  # known users only the timing test fails to log in as


def _users(path: Path) -> Path:
    for name, password in PASSWORDS.items():
        auth.add_user(path, name, password, "admin" if name == "sato" else "rater")
    for name in TIMED:
        auth.add_user(path, name, "timing password", "rater")
    return path


@pytest.fixture(scope="module")
def lab(demo_build, tmp_path_factory):
    root = tmp_path_factory.mktemp("labsafety")
    workspace = root / "workspace"
    shutil.copytree(demo_build, workspace)
    users = _users(root / "users.yaml")
    secret = {"name": "漏れた", "first_mes": "やあ", "private_key": "PRIVATE-KEY-MARKER"}
    (root / "outside.json").write_text(json.dumps(secret, ensure_ascii=False), encoding="utf-8")
    # Gradio's cache in a folder of this test, so the test can look for copies of what a file event named
    env = {"RP_EVAL_API_KEY": "", "RP_EVAL_LIMIT_UPLOAD_MB": "1", "GRADIO_TEMP_DIR": str(root / "gradio-cache")}
    with running_app(workspace, root / "app.log", "--auth", str(users), env=env) as url:
        yield url, workspace, root


def _login(url: str, name: str, path: str = "", password: str | None = None) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=120)
    r = c.post(f"{path}/login", data={"username": name, "password": password or PASSWORDS[name]})
    assert r.status_code == 200 and r.json()["success"], r.text
    return c


def _config(c: httpx.Client, path: str = "") -> dict:
    r = c.get(f"{path}/config")
    assert r.status_code == 200, r.text
    return r.json()


def _endpoints(c: httpx.Client, path: str = "") -> dict[str, int]:
    return {d["api_name"]: d["id"] for d in _config(c, path)["dependencies"] if d.get("api_name")}


def _event(c: httpx.Client, fn: int, data: list, session: str, path: str = "") -> tuple[str, dict]:
    """One event through the queue, as the page sends it: (the raw event stream, the final message)."""
    join = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None, "trigger_id": None}
    r = c.post(f"{path}/gradio_api/queue/join", json=join)
    assert r.status_code == 200, r.text
    raw = ""
    with c.stream("GET", f"{path}/gradio_api/queue/data", params={"session_hash": session}) as st:
        for line in st.iter_lines():
            raw += line + "\n"
            if line.startswith("data:") and '"process_completed"' in line:
                return raw, json.loads(line[5:])
    pytest.fail(f"the event stream ended without a result:\n{raw[-2000:]}")


def _sql(workspace: Path, query: str, **params) -> list[tuple]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{workspace / 'rp_eval.sqlite'}")
    with engine.connect() as c:
        rows = [tuple(r) for r in c.execute(text(query), params)]
    engine.dispose()
    return rows


def _file_events(config: dict) -> list[tuple[int, int, str]]:
    """(event number, input position, component type) for every event that takes a file input."""
    kinds = {c["id"]: c.get("type", "") for c in config["components"]}
    return [
        (d["id"], i, kinds[comp])
        for d in config["dependencies"]
        for i, comp in enumerate(d.get("inputs", []))
        if kinds.get(comp) in ("file", "uploadbutton", "image", "files")
    ]


def _file(path: Path | str) -> dict:
    return {"path": str(path), "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def test_no_file_input_takes_a_server_path(lab):
    """Finding 2: every file input of every page is given the database, a card-shaped JSON outside the
    workspace and a path that does not exist: each is refused the same way, nothing is imported."""
    url, workspace, root = lab
    sato = _login(url, "sato", "/admin")
    rin = _login(url, "rin")
    before = _sql(workspace, "SELECT persona_id FROM persona_cards")
    tried = 0
    for client, path in ((rin, ""), (sato, "/admin")):
        config = _config(client, path)
        events = _file_events(config)
        assert events, f"no file input found on {path or '/'}: the test would try nothing"
        n_inputs = {d["id"]: len(d["inputs"]) for d in config["dependencies"]}
        for fn, position, _kind in events:
            answers = []
            for target in (workspace / "rp_eval.sqlite", root / "outside.json", root / "no-such-file.json"):
                data: list = [None] * n_inputs[fn]
                data[position] = _file(target)
                raw, done = _event(client, fn, data, uuid.uuid4().hex, path)
                assert not done.get("success"), (fn, target, raw[-500:])
                answers.append(re.sub(r"/\S+", "PATH", json.dumps(done.get("output", {}), ensure_ascii=False)))
                assert "PRIVATE-KEY-MARKER" not in raw
                tried += 1
            assert len(set(answers)) == 1, answers  # an existing and a missing file look the same
    assert tried >= 6
    assert _sql(workspace, "SELECT persona_id FROM persona_cards") == before


def test_the_database_and_users_file_are_never_served(lab):
    """Findings 1 and 2: the database and the users file asked for by URL, also after a rater named them in a file
    event: Gradio copied a file named there into its cache before any check, and `/file=` served the copy."""
    url, workspace, root = lab
    sato = _login(url, "sato", "/admin")
    rin = _login(url, "rin")
    anyone = httpx.Client(base_url=url, timeout=30)
    private = (workspace / "rp_eval.sqlite", root / "users.yaml", workspace / "rp_eval.sqlite-wal")
    config = _config(rin)
    fn, position, _ = _file_events(config)[0]
    n_inputs = next(len(d["inputs"]) for d in config["dependencies"] if d["id"] == fn)
    for target in private[:2]:
        data: list = [None] * n_inputs
        data[position] = _file(target)
        _event(rin, fn, data, uuid.uuid4().hex)
    cache = root / "gradio-cache"
    copies = [p for p in cache.rglob("*") if p.is_file() and p.name in {t.name for t in private}]
    for target in (*private, *copies):
        for client, path in ((sato, "/admin"), (sato, ""), (rin, ""), (anyone, ""), (anyone, "/rate")):
            r = client.get(f"{path}/gradio_api/file={target}")
            assert r.status_code in (401, 403, 404), (path, target, r.status_code)
            assert b"SQLite format" not in r.content and b"pbkdf2" not in r.content
    assert not copies, copies  # never opened, so never copied


def test_nothing_before_a_login_names_an_endpoint_a_model_or_a_path(lab):
    """Finding 10: the pages served before a login, with and without `all_endpoints`, and the API docs."""
    url, workspace, _ = lab
    anyone = httpx.Client(base_url=url, timeout=30)
    for path in ("/", "/admin/", "/rate/", "/?all_endpoints=true", "/admin/?all_endpoints=true"):
        r = anyone.get(path)
        body = r.text
        leaked = [
            w for w in (*MODELS, "leaderboard_export", "import_card", "rate_new_pair", str(workspace)) if w in body
        ]
        assert not leaked, (path, leaked)
    for path in ("/docs", "/redoc", "/openapi.json", "/admin/docs", "/admin/openapi.json", "/gradio_api/openapi.json"):
        r = anyone.get(path)
        assert r.status_code in (401, 404), (path, r.status_code)
        assert "leaderboard_export" not in r.text and "/v1/chat/completions" not in r.text


def test_an_event_number_the_page_does_not_have_gets_a_4xx(lab):
    """Finding 8: a numeric fn_index past the page's events, -1 or 1e20 on the raters' page."""
    url, _, _ = lab
    rin = _login(url, "rin")
    past = len(rin.get("/config").json()["dependencies"]) + 50  # the page's events are numbered from 0
    for fn in (past, -1, 1e20, "x", True):
        join = {"data": [], "fn_index": fn, "session_hash": uuid.uuid4().hex, "event_data": None, "trigger_id": None}
        r = rin.post("/gradio_api/queue/join", json=join)
        assert 400 <= r.status_code < 500, (fn, r.status_code, r.text[:300])
        assert "Traceback" not in r.text


def test_text_that_is_not_unicode_gets_a_400_not_a_crash(lab):
    """Finding 8: a lone surrogate in a page event (the Chat and Rate handlers crashed on it)."""
    url, _, root = lab
    rin = _login(url, "rin")
    fns = _endpoints(rin)
    fn = fns["rate_new_pair"]
    body = '{"data": ["", "", "\\ud800", 24, 0.7], "fn_index": FN, "session_hash": "s", "event_data": null}'
    body = body.replace("FN", str(fn))
    r = rin.post("/gradio_api/queue/join", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "surrogate" in r.json()["error"]["message"]


def test_every_path_in_a_merge_recipe_is_confined_and_parents_list_every_source(lab):
    """Finding 3: the admin's Merge tab, over HTTP, with an outside model named in each nested form mergekit
    reads; each is refused naming the path, nothing is merged or registered. A recipe naming a registered model
    and a folder inside the workspace merges: its parents are the registered models among them and `made_by.sources` lists every source."""
    url, workspace, root = lab
    outside = root / "outside-model"
    if not outside.exists():
        shutil.copytree(workspace / "models" / "demo" / MODELS[1], outside)
    sato = _login(url, "sato", "/admin")
    run = _endpoints(sato, "/admin")["run"]
    a = MODELS[0]
    forms = {
        "nested model.path": f"models:\n  - model: {{model: {{path: {outside}}}}}\n    parameters: {{weight: 0.5}}\n"
        f"  - model: {a}\n    parameters: {{weight: 0.5}}\nmerge_method: linear\n",
        "tokenizer.source": f"models:\n  - model: {a}\n    parameters: {{weight: 1.0}}\nmerge_method: linear\n"
        f"tokenizer:\n  source: {{model: {{path: {outside}}}}}\n",
        "tokenizer_source": f"models:\n  - model: {a}\n    parameters: {{weight: 1.0}}\nmerge_method: linear\n"
        f"tokenizer_source: {outside}\n",
        "base_model": f"models:\n  - model: {a}\n    parameters: {{weight: 0.5, density: 0.5}}\n"
        f"merge_method: ties\nbase_model: {{model: {{path: {outside}}}}}\n",
        "slice source": f"slices:\n  - sources:\n      - {{model: {outside}, layer_range: [0, 2]}}\n"
        f"      - {{model: {a}, layer_range: [0, 2]}}\nmerge_method: slerp\nbase_model: {a}\n"
        "parameters: {t: 0.5}\n",
        "lora": f"models:\n  - model: {a}+{outside}\n    parameters: {{weight: 1.0}}\nmerge_method: linear\n",
    }
    before = _sql(workspace, "SELECT name FROM models")
    for form, recipe in forms.items():
        raw, done = _event(sato, run, [recipe, f"escaped-{form.split()[0]}"], uuid.uuid4().hex, "/admin")
        text = json.dumps(done.get("output", {}), ensure_ascii=False)
        assert "outside the folders" in text and str(outside) in text, (form, text[:600])
    assert _sql(workspace, "SELECT name FROM models") == before
    assert not list((workspace / "models").glob("merged/escaped*"))

    copied = workspace / "models" / "copied-b"  # a folder inside the workspace that nobody registered
    if not copied.exists():
        shutil.copytree(workspace / "models" / "demo" / MODELS[1], copied)
    recipe = (
        f"models:\n  - model: {a}\n    parameters: {{weight: 0.5}}\n  - model: {{model: {{path: {copied}}}}}\n"
        "    parameters: {weight: 0.5}\nmerge_method: linear\n"
    )
    raw, done = _event(sato, run, [recipe, "two-sources"], uuid.uuid4().hex, "/admin")
    rows = _sql(workspace, "SELECT parents FROM models WHERE name = 'two-sources'")
    assert rows, [line[:300] for line in raw.splitlines() if "process_" in line or "⚠️" in line or "output" in line][-6:]
    ((parents, made_by),) = _sql(workspace, "SELECT parents, made_by FROM models WHERE name = 'two-sources'")
    assert json.loads(parents) == [a]  # the registered model among the sources
    assert json.loads(made_by)["sources"] == [a, str(copied)]  # every source, as the recipe names it


def sampling_inputs(max_new: int = 16, seed: int = 1) -> list:
    """The Chat tab's sampling panel as the page sends it (chat_actions.FORM's order), at the library's defaults."""
    from rp_eval.chat.generate import GenerationSettings
    from rp_eval.ui.chat_actions import FORM

    defaults = GenerationSettings()
    values = {f: getattr(defaults, f, None) for f in FORM} | {"max_new_tokens": max_new, "seed": seed, "stops": ""}
    return [values[f] for f in FORM]


def _chat_inputs(message: str) -> list:
    # message, conversation (state), persona, model a, model b, side by side, user, system, greeting, frame,
    # show raw, then the sampling panel (temperature ... max new tokens, seed, stop strings)
    return [message, None, "samurai", MODELS[0], None, False, "あなた", "", 0, "auto", False, *sampling_inputs()]


def test_a_rater_can_not_open_or_undo_another_raters_chat(lab):
    """Finding 4: ken refreshes the list, reopens rin's conversation by number and presses undo."""
    url, workspace, _ = lab
    rin, ken = _login(url, "rin"), _login(url, "ken")
    fns = _endpoints(rin)
    _, done = _event(rin, fns["respond"], _chat_inputs("秘密の合言葉はりんごです。"), uuid.uuid4().hex)
    assert done.get("success"), done
    ((conv_id, owner),) = _sql(workspace, "SELECT id, owner FROM chat_conversations WHERE owner = 'rin'")
    live = _sql(workspace, "SELECT id FROM chat_turns WHERE conversation_id = :c AND NOT discarded", c=conv_id)
    session = uuid.uuid4().hex
    config = _config(ken)
    kinds = {c["id"]: c for c in config["components"]}
    for d in config["dependencies"]:  # every event with no inputs whose outputs include the conversation list
        if not d["inputs"] and any(kinds[o].get("type") == "dropdown" for o in d["outputs"]):
            raw, _ = _event(ken, d["id"], [], session)
            assert "合言葉" not in raw and f'"#{conv_id} ' not in raw, raw[-800:]
    for name, data in (("reopen", [conv_id, False]), ("undo", [None, False]), ("export_jsonl", [None])):
        raw, _ = _event(ken, fns[name], data, session)
        assert "合言葉" not in raw, (name, raw[-800:])
    after = _sql(workspace, "SELECT id FROM chat_turns WHERE conversation_id = :c AND NOT discarded", c=conv_id)
    assert after == live and owner == "rin"


def _vote(c: httpx.Client, fns: dict, session: str) -> None:
    _, done = _event(c, fns["rate_new_pair"], ["", "", "こんにちは。", 16, 0.7], session)
    assert done.get("success"), done
    _, done = _event(c, fns["rate_vote_tie"], [None, "", ""], session)
    assert done.get("success"), done


def test_acknowledged_votes_survive_a_file_event_naming_the_database_a_backup_and_a_kill(demo_build, tmp_path):
    """Finding 1, the whole sequence: a rater names the database in the card import, online backups run while
    votes are being written (another program's, as the README used to advise, and `rp-eval backup`), more votes,
    then SIGKILL: every acknowledged vote is on disk, the database and the backups pass their integrity checks."""
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_build, workspace)
    users = _users(tmp_path / "users.yaml")
    env = {**os.environ, "RP_EVAL_HOME": str(workspace), "HF_HUB_OFFLINE": "1"}
    with running_app(workspace, tmp_path / "app.log", "--auth", str(users), env={"RP_EVAL_API_KEY": ""}) as url:
        rin = _login(url, "rin")
        fns, session = _endpoints(rin), uuid.uuid4().hex
        card = next(fn for fn, *_ in _file_events(_config(rin)))
        _, refused = _event(rin, card, [_file(workspace / "rp_eval.sqlite")], uuid.uuid4().hex)
        assert not refused.get("success")
        acknowledged = 0
        _vote(rin, fns, session)
        acknowledged += 1
        backups: list[tuple[Path, int, str]] = []

        def back_up() -> None:
            for i in range(4):  # another program's online backup, then rp-eval backup, twice
                out = tmp_path / f"backup-{i}.sqlite"
                cmd = [sys.executable, "-m", "rp_eval", "backup", str(out)]
                if i % 2 == 0:
                    cmd = [sys.executable, "-c", PLAIN_BACKUP, str(workspace / "rp_eval.sqlite"), str(out)]
                done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
                backups.append((out, done.returncode, done.stderr[-800:]))

        backer = threading.Thread(target=back_up)
        backer.start()
        while backer.is_alive() or acknowledged < 4:
            _vote(rin, fns, session)
            acknowledged += 1
        backer.join()
        for _ in range(2):  # after the backups closed their connections
            _vote(rin, fns, session)
            acknowledged += 1
        pid = int(subprocess.check_output(["pgrep", "-f", f"app.py --port {url.rsplit(':', 1)[1]}"]).split()[0])
        os.kill(pid, signal.SIGKILL)
        time.sleep(1)
    votes = _sql(workspace, "SELECT count(*) FROM rating_votes WHERE rater = 'rin'")[0][0]
    assert votes == acknowledged  # the finding: acknowledged votes gone after the kill
    (ok,) = _sql_file(workspace / "rp_eval.sqlite", "PRAGMA integrity_check")
    assert ok == ("ok",)
    assert [(b.name, rc) for b, rc, _ in backups] == [(f"backup-{i}.sqlite", 0) for i in range(4)], backups
    for b, _, _ in backups:
        (ok,) = _sql_file(b, "PRAGMA integrity_check")
        assert ok == ("ok",)
        (n,) = _sql_file(b, "SELECT count(*) FROM rating_votes")
        assert 1 <= n[0] <= acknowledged


# What any other program's online backup does (the sqlite3 shell's .backup, a script): its connection's close is
# what deleted the log the server was still writing to, once the server had lost its locks on the file.
PLAIN_BACKUP = (
    "import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect(sys.argv[2]); s.backup(d); "
    "d.close(); s.close()"
)


def _sql_file(path: Path, query: str) -> list[tuple]:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return [tuple(r) for r in con.execute(query)]
    finally:
        con.close()


def test_login_takes_as_long_for_an_unknown_name_and_slows_down_after_failures(lab):
    """Finding 9 (runs last in this module: it locks names and the address for a moment)."""
    url, _, root = lab
    anyone = httpx.Client(base_url=url, timeout=60)

    def attempt(name: str, password: str) -> tuple[int, float]:
        start = time.perf_counter()
        r = anyone.post("/login", data={"username": name, "password": password})
        return r.status_code, time.perf_counter() - start

    known, unknown = [], []
    for i, name in enumerate(TIMED):  # one wrong password per known name: no name reaches its limit here
        for target, name_ in ((unknown, f"nobody{i}"), (known, name)):
            status, seconds = attempt(name_, "wrong password")
            assert status == 400
            target.append(seconds)
    k, u = statistics.median(known), statistics.median(unknown)
    assert abs(k - u) <= 0.25 * max(k, u), (known, unknown)

    for _ in range(5):  # the default limit: 5 failures of one name
        assert attempt("ken", "not his password")[0] == 400
    assert attempt("ken", PASSWORDS["ken"])[0] == 400  # locked for a moment: even the right password waits
    time.sleep(2.5)
    assert attempt("ken", PASSWORDS["ken"])[0] == 200  # and then it is let in

    for i in range(20):  # an address trying many names (5 * 4 failures from one address)
        attempt(f"guess{i}", "wrong")
    assert attempt("sato", PASSWORDS["sato"])[0] == 400
    log = (root / "app.log").read_text()
    assert "login failed for name 'ken' from '127.0.0.1'" in log
    assert "login refused (too many failures" in log
    time.sleep(3)
    assert attempt("sato", PASSWORDS["sato"])[0] == 200
