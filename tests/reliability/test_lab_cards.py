"""A lab server (`python app.py --auth users.yaml`) and the files raters send it (issue 29, findings 5-7), over
plain HTTP as the page sends them: a card uploaded to `/gradio_api/upload`, then the Chat tab's import event
naming the uploaded copy."""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from pathlib import Path

import httpx
import pytest

from rp_eval.chat.personas import PERSONAS_DIR
from tests.conftest import running_app
from tests.reliability.test_lab_safety import _config, _event, _sql
from tests.reliability.test_lab_trust import _login, _users

LEGACY = "old-lab-card"  # a card stored before cards had owners


def _legacy_workspace(workspace: Path) -> None:
    """The demo workspace as today's main left it: persona_cards without an owner, one card imported then."""
    db = sqlite3.connect(workspace / "rp_eval.sqlite")
    columns = [r[1] for r in db.execute("PRAGMA table_info(persona_cards)")]
    if "owner" in columns:
        db.execute("ALTER TABLE persona_cards DROP COLUMN owner")
    card = _card("古いカード", LEGACY, "以前から研究室にあるカード")
    db.execute(
        "INSERT INTO persona_cards (persona_id, card, created_at) VALUES (?, ?, '2026-11-01 00:00:00')",
        (LEGACY, json.dumps(card, ensure_ascii=False)),
    )
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def lab(demo_build, tmp_path_factory):
    root = tmp_path_factory.mktemp("labcards")
    workspace = root / "workspace"
    shutil.copytree(demo_build, workspace)
    _legacy_workspace(workspace)
    users = _users(root / "users.yaml")
    env = {"GRADIO_TEMP_DIR": str(root / "gradio-cache")}
    with running_app(workspace, root / "app.log", "--auth", str(users), env=env) as url:
        yield url, workspace, root


def _card(name: str, card_id: str, description: str) -> dict:
    data = {
        "name": name,
        "description": description,
        "first_mes": "こんにちは。",
        "extensions": {"rp_eval": {"id": card_id}},
    }
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}


def _upload(c: httpx.Client, name: str, blob: bytes, path: str = "") -> dict:
    r = c.post(f"{path}/gradio_api/upload", files={"files": (name, blob, "application/octet-stream")})
    assert r.status_code == 200, r.text
    (stored,) = r.json()
    return {"path": stored, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


_SESSIONS: dict[int, str] = {}


def _session(c: httpx.Client) -> str:
    """One page session per client, as one open page: Gradio checks a dropdown's value against the choices it last
    sent that session."""
    return _SESSIONS.setdefault(id(c), uuid.uuid4().hex)


def _by_elem(config: dict, elem_id: str) -> int:
    return next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)


def _fn(config: dict, trigger: str, inputs: list[int]) -> int:
    """The event of the page that `trigger` (component id, event name) starts with `inputs`."""
    comp, event = trigger
    for d in config["dependencies"]:
        if [comp, event] in [list(t) for t in d.get("targets", [])] and d["inputs"] == inputs:
            return d["id"]
    raise AssertionError(f"no {event} event on component {comp}")


def _import(c: httpx.Client, card: dict | bytes, path: str = "", name: str = "card.json") -> str:
    """Import a card as the page does (upload, then the File's upload event); the status line it gives."""
    config = _config(c, path)
    box = _by_elem(config, "chat-card-import")
    blob = card if isinstance(card, bytes) else json.dumps(card, ensure_ascii=False).encode()
    raw, done = _event(c, _fn(config, (box, "upload"), [box]), [_upload(c, name, blob, path)], _session(c), path)
    assert done.get("success"), raw[-1500:]
    return done["output"]["data"][1]


def _choices(c: httpx.Client, path: str = "") -> set[str]:
    """The persona list as it opens (the dropdown's focus event, not queued: /run/predict)."""
    config = _config(c, path)
    box = _by_elem(config, "chat-persona")
    fn = _fn(config, (box, "focus"), [])
    r = c.post(f"{path}/gradio_api/run/predict", json={"data": [], "fn_index": fn, "session_hash": _session(c)})
    assert r.status_code == 200, r.text
    return {value for _, value in r.json()["data"][0]["choices"]}


def _export(c: httpx.Client, persona_id: str, path: str = "") -> dict | None:
    """The card the Export JSON button gives for `persona_id` (None: no card for this person)."""
    config = _config(c, path)
    button, persona = _by_elem(config, "chat-export-json"), _by_elem(config, "chat-persona")
    _, done = _event(c, _fn(config, (button, "click"), [persona]), [persona_id], _session(c), path)
    if not done.get("success"):  # Gradio's own check: a value this page was never offered
        assert "not in the list of choices" in done["output"]["error"], done
        return None
    out = done["output"]["data"][0]
    if out is None:
        return None
    r = c.get(out["url"])
    assert r.status_code == 200, r.text
    return r.json()


def _stored(workspace: Path) -> dict[str, tuple[str, str]]:
    rows = _sql(workspace, "SELECT persona_id, card, owner FROM persona_cards")
    return {pid: (json.loads(card)["data"]["description"], owner) for pid, card, owner in rows}


def test_a_raters_card_is_theirs_and_no_one_elses_import_replaces_it(lab):
    """Finding 5: ruth imports a card; rita imports another card with the same `extensions.rp_eval.id`, one with a
    shipped persona's id, and one with the id of a card stored before cards had owners. Nothing of ruth's, of the
    shipped personas or of the old card changes; rita's imports are kept under ids of their own; each rater sees
    the lab's cards and their own, the admin every card, and an admin may replace the lab's card."""
    url, workspace, _ = lab
    ruth, rita, sato = _login(url, "ruth"), _login(url, "rita"), _login(url, "sato", "/admin")
    assert "`mio`" in _import(ruth, _card("澪", "mio", "ルースのカード"))
    said = _import(rita, _card("澪", "mio", "リタが上書きしようとしたカード"))
    assert "`mio-rita`" in said and "`mio`" in said, said  # kept beside ruth's, and the message says why
    shipped = sorted(p.stem for p in PERSONAS_DIR.glob("*.yaml"))[0]
    shipped_text = (PERSONAS_DIR / f"{shipped}.yaml").read_text()
    assert f"`{shipped}-rita`" in _import(rita, _card("偽物", shipped, "同梱ペルソナの乗っ取り"))
    assert f"`{LEGACY}-rita`" in _import(rita, _card("古いカード", LEGACY, "古いカードの乗っ取り"))

    stored = _stored(workspace)
    assert stored["mio"] == ("ルースのカード", "ruth")
    assert stored["mio-rita"] == ("リタが上書きしようとしたカード", "rita")
    assert stored[LEGACY] == ("以前から研究室にあるカード", "")
    assert shipped not in stored and (PERSONAS_DIR / f"{shipped}.yaml").read_text() == shipped_text
    assert _export(ruth, "mio")["data"]["description"] == "ルースのカード"
    assert _export(ruth, shipped)["data"]["description"] != "同梱ペルソナの乗っ取り"
    assert _export(ruth, LEGACY)["data"]["description"] == "以前から研究室にあるカード"  # old cards keep working
    assert _export(rita, "mio") is None  # ruth's card is hers

    ruth_sees, rita_sees, sato_sees = _choices(ruth), _choices(rita), _choices(sato, "/admin")
    assert {"mio", LEGACY, shipped} <= ruth_sees and not {"mio-rita", f"{shipped}-rita"} & ruth_sees
    assert {"mio-rita", f"{shipped}-rita", LEGACY} <= rita_sees and "mio" not in rita_sees
    assert {"mio", "mio-rita", f"{shipped}-rita", f"{LEGACY}-rita", LEGACY} <= sato_sees
    (built,) = [c for c in _config(rita)["components"] if c.get("props", {}).get("elem_id") == "chat-persona"]
    built_ids = {value for _, value in built["props"]["choices"]}
    assert LEGACY in built_ids and not {"mio", "mio-rita"} & built_ids  # the page built for all names no rater's card

    # ruth replaces her own card; an admin replaces the lab's old card in place
    assert "`mio`" in _import(ruth, _card("澪", "mio", "ルースの新しい版"))
    assert "`old-lab-card`" in _import(sato, _card("古いカード", LEGACY, "管理者が直した版"), "/admin")
    stored = _stored(workspace)
    assert stored["mio"] == ("ルースの新しい版", "ruth") and stored[LEGACY] == ("管理者が直した版", "")
