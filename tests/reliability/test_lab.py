"""Lab-server isolation (issue 12, part 5), over plain HTTP as a script would do it, not through the page: with
`--auth users.yaml`, nothing is served before a login, a rater reaches no admin action (the admin page, the
heavy tabs' endpoints, model registration, the API), votes are signed by the login and a rater can not judge
another's pair, and the blind A/B endpoints' raw event streams name no model before the vote."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest
import requests

from rp_eval import auth
from tests.conftest import running_app

MODELS = ("demo-llama-a", "demo-llama-b", "demo-mistral", "demo-llama-eos", "demo-mistral-long")
PASSWORDS = {"sato": "admin password", "rin": "rater password", "ken": "another rater"}


@pytest.fixture(scope="module")
def lab(demo_build, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    workspace = root / "workspace"
    shutil.copytree(demo_build, workspace)
    users = root / "users.yaml"
    for name, password in PASSWORDS.items():
        auth.add_user(users, name, password, "admin" if name == "sato" else "rater")
    with running_app(workspace, root / "app.log", "--auth", str(users), env={"RP_EVAL_API_KEY": ""}) as url:
        yield url, workspace


def _login(url: str, name: str, path: str = "") -> requests.Session:
    s = requests.Session()
    r = s.post(f"{url}{path}/login", data={"username": name, "password": PASSWORDS[name]}, timeout=30)
    assert r.status_code == 200 and r.json()["success"], r.text
    return s


def _endpoints(s: requests.Session, url: str, path: str = "") -> dict[str, int]:
    config = s.get(f"{url}{path}/config", timeout=30).json()
    return {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}


def _queue(s: requests.Session, url: str, fn: int, data: list, session: str) -> tuple[str, dict]:
    """One event through the queue, as the page sends it; (the raw event stream, the final message)."""
    join = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None, "trigger_id": None}
    r = s.post(f"{url}/gradio_api/queue/join", json=join, timeout=30)
    assert r.status_code == 200, r.text
    raw = ""
    with s.get(f"{url}/gradio_api/queue/data", params={"session_hash": session}, stream=True, timeout=120) as st:
        for line in st.iter_lines(decode_unicode=True):
            raw += (line or "") + "\n"
            if line and line.startswith("data:") and '"process_completed"' in line:
                return raw, json.loads(line[5:])
    pytest.fail(f"the event stream ended without a result:\n{raw[-2000:]}")


def _votes(workspace) -> list[tuple[str, str]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{workspace / 'rp_eval.sqlite'}")
    with engine.connect() as c:
        rows = [tuple(r) for r in c.execute(text("SELECT item_id, rater FROM rating_votes"))]
    engine.dispose()
    return rows


def _open_items(workspace, rater: str) -> list[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{workspace / 'rp_eval.sqlite'}")
    with engine.connect() as c:
        q = text("SELECT id FROM rating_items WHERE rater = :r AND NOT closed")
        rows = [r[0] for r in c.execute(q, {"r": rater})]
    engine.dispose()
    return rows


def test_nothing_is_served_before_a_login(lab):
    url, _ = lab
    for path in ("/config", "/gradio_api/info", "/rate/config", "/admin/config", "/admin/gradio_api/info"):
        assert requests.get(url + path, timeout=30).status_code == 401, path
    join = {"data": [], "fn_index": 0, "session_hash": "x", "event_data": None, "trigger_id": None}
    assert requests.post(f"{url}/gradio_api/queue/join", json=join, timeout=30).status_code in (401, 403)
    # the OpenAI-compatible API was open to anyone on a lab server without an API key: now closed
    assert requests.get(f"{url}/v1/models", timeout=30).status_code == 401
    body = {"model": MODELS[0], "messages": [{"role": "user", "content": "こんにちは"}]}
    r = requests.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 401 and "RP_EVAL_API_KEY" in r.json()["error"]["message"]


def test_a_rater_reaches_no_admin_action(lab):
    url, _ = lab
    rater, admin = _login(url, "rin"), _login(url, "sato", "/admin")
    for path in ("/admin/config", "/admin/gradio_api/info"):
        assert rater.get(url + path, timeout=30).status_code == 401, path
    assert admin.get(f"{url}/admin/config", timeout=30).status_code == 200
    heavy = set(_endpoints(admin, url, "/admin")) - set(_endpoints(rater, url))
    assert {"add", "remove", "_run", "start", "resume", "run"} <= heavy, sorted(heavy)
    for name in sorted(heavy):
        r = rater.post(f"{url}/gradio_api/call/{name}", json={"data": []}, timeout=30)
        assert r.status_code == 404, (name, r.status_code, r.text[:200])
        r = rater.post(f"{url}/admin/gradio_api/call/{name}", json={"data": []}, timeout=30)
        assert r.status_code == 401, (name, r.status_code)


def test_blind_pair_names_no_model_before_the_vote_and_votes_are_signed_by_the_login(lab):
    url, workspace = lab
    rin = _login(url, "rin")
    fns, session = _endpoints(rin, url), uuid.uuid4().hex
    assert not [m for m in MODELS if m in rin.get(f"{url}/rate/config", timeout=30).text]  # the blind page
    raw, done = _queue(rin, url, fns["rate_new_pair"], ["ken", "", "はじめまして。", 24, 0.7], session)
    assert done["success"], done
    raw2, done2 = _queue(rin, url, fns["rate_continue"], [None, "もう少し詳しく教えて。"], session)
    assert done2["success"], done2
    leaked = [m for m in MODELS if m in raw + raw2]
    assert not leaked, leaked  # neither the replies' stream nor the status line names a model
    raw3, done3 = _queue(rin, url, fns["rate_vote_tie"], [None, "ken", ""], session)
    assert [m for m in MODELS if m in raw3]  # the reveal comes after the vote (so the check above can fail)
    assert [r for _, r in _votes(workspace)].count("rin") == 1
    assert "ken" not in [r for _, r in _votes(workspace)]  # the name typed in the form does not sign the vote


def test_a_rater_can_not_judge_another_raters_pair(lab):
    url, workspace = lab
    rin, ken = _login(url, "rin"), _login(url, "ken")
    fns, rin_session = _endpoints(rin, url), uuid.uuid4().hex
    _, done = _queue(rin, url, fns["rate_new_pair"], ["", "", "おはよう。", 24, 0.7], rin_session)
    assert done["success"]
    (item,) = _open_items(workspace, "rin")
    before = _votes(workspace)
    # ken, in a session of his own, sends rin's item id (say he guessed it) in the slot of the page's hidden state
    _, forged = _queue(ken, url, fns["rate_vote_model_a"], [item, "ken", ""], uuid.uuid4().hex)
    assert forged["success"] and "⚠️" in json.dumps(forged["output"]["data"], ensure_ascii=False)
    assert _votes(workspace) == before and _open_items(workspace, "rin") == [item]
    _, mine = _queue(rin, url, fns["rate_vote_model_b"], [None, "", ""], rin_session)
    assert (item, "rin") in _votes(workspace) and len(_votes(workspace)) == len(before) + 1


def test_a_rater_can_not_download_another_raters_votes(lab):
    url, _ = lab
    rin, ken = _login(url, "rin"), _login(url, "ken")
    fns, session = _endpoints(rin, url), uuid.uuid4().hex
    _queue(rin, url, fns["rate_new_pair"], ["", "", "こんにちは。", 24, 0.7], session)
    _queue(rin, url, fns["rate_vote_model_a"], [None, "", ""], session)
    args = ["raw", "csv", "", "", [], "", "", 100]
    _, done = _queue(ken, url, _endpoints(ken, url)["leaderboard_export"], args, uuid.uuid4().hex)
    files = done["output"]["data"][0] or []
    votes = next(f for f in files if f["orig_name"].startswith("votes"))
    text = ken.get(votes["url"], timeout=30).text
    assert "rin" not in text
