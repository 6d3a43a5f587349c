"""A lab server (`python app.py --auth users.yaml`) and the files raters send it (issue 29, findings 5-7), over
plain HTTP as the page sends them: a card uploaded to `/gradio_api/upload`, then the Chat tab's import event
naming the uploaded copy."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image

from rp_eval import auth
from rp_eval.chat import cards
from rp_eval.chat.personas import PERSONAS_DIR
from tests.conftest import demo_copy_with, running_app
from tests.reliability.test_lab_limits import LONG, _finish, _join, _long_chat
from tests.reliability.test_lab_safety import _config, _endpoints, _event, _sql, _sql_file, _vote
from tests.reliability.test_lab_trust import _login, _server_pid, _users

LEGACY = "old-lab-card"  # a card stored before cards had owners
ROSE = "rose password"
BUDGET_MB = 30  # limit_upload_mb_per_login on this server (per 60 minutes, the default window)


def _legacy_workspace(workspace: Path) -> None:
    """The demo workspace as today's main left it: persona_cards without an owner, one card imported then."""
    db = sqlite3.connect(workspace / "rp_eval.sqlite")
    columns = [r[1] for r in db.execute("PRAGMA table_info(persona_cards)")]
    if "owner" in columns:
        db.execute("ALTER TABLE persona_cards DROP COLUMN owner")
    db.execute("DROP TABLE IF EXISTS alembic_version")  # made before migrations
    card = _card("古いカード", LEGACY, "以前から研究室にあるカード")
    db.execute(
        "INSERT INTO persona_cards (persona_id, card, created_at) VALUES (?, ?, '2026-11-01 00:00:00')",
        (LEGACY, json.dumps(card, ensure_ascii=False)),
    )
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def lab(demo_build, tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("labcards")
    workspace = demo_copy_with(demo_build, root, tokenizer, LONG, max_position_embeddings=8192)  # a model that talks
    _legacy_workspace(workspace)
    users = _users(root / "users.yaml")
    auth.add_user(users, "rose", ROSE)
    cache = root / "gradio-cache"
    for name, age_h in (("old", 30), ("fresh", 0)):  # an upload of yesterday's run, and one of a minute ago
        kept = cache / f"{name}-upload" / f"{name}.json"
        kept.parent.mkdir(parents=True)
        kept.write_text("{}")
        os.utime(kept, (time.time() - age_h * 3600, time.time() - age_h * 3600))
    env = {"GRADIO_TEMP_DIR": str(cache), "RP_EVAL_LIMIT_UPLOAD_MB_PER_LOGIN": str(BUDGET_MB)}
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


def _import(c: httpx.Client, card: dict | bytes, path: str = "", name: str = "card.json", session: str = "") -> str:
    """Import a card as the page does (upload, then the File's upload event); the status line it gives."""
    config = _config(c, path)
    box = _by_elem(config, "chat-card-import")
    blob = card if isinstance(card, bytes) else json.dumps(card, ensure_ascii=False).encode()
    file = _upload(c, name, blob, path)
    raw, done = _event(c, _fn(config, (box, "upload"), [box]), [file], session or _session(c), path)
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


def _chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _bomb(side: int = 13_000) -> bytes:
    """A PNG of `side` x `side` RGB pixels, all black (169 megapixels in about half a megabyte), with a card in a
    `chara` chunk after the picture, where SillyTavern writes it."""
    ihdr = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    squeeze, row = zlib.compressobj(9), bytes(1 + 3 * side)
    idat = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    card = _card("爆弾", "bomb", "画素の爆弾")
    text = b"chara\0" + cards._b64(card).encode()
    return (
        cards.PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", idat)
        + _chunk(b"tEXt", text)
        + _chunk(b"IEND", b"")
    )


def _peak_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])


def test_a_card_png_is_read_without_decoding_its_pixels(lab):
    """Finding 6: the 169-megapixel, half-megabyte PNG imported four times at once (two raters, two each): each
    answers within a second or two with a message naming the cap, and the server's peak memory hardly moves. A
    card whose `chara` text inflates past the cap (zTXt) is refused naming it; an ordinary card PNG still imports."""
    url, workspace, _ = lab
    ruth, rita = _login(url, "ruth"), _login(url, "rita")
    bomb = _bomb()
    assert len(bomb) < 600_000
    pid = _server_pid(url)
    for c in (ruth, rita):
        _config(c)
        _session(c)
    before = _peak_kb(pid)
    said: list[tuple[str, float]] = []
    start = threading.Barrier(4)

    def send(c: httpx.Client) -> None:
        start.wait()
        t0 = time.perf_counter()
        said.append((_import(c, bomb, name="bomb.png", session=uuid.uuid4().hex), time.perf_counter() - t0))

    threads = [threading.Thread(target=send, args=(c,)) for c in (ruth, ruth, rita, rita)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown_mb = (_peak_kb(pid) - before) / 1024
    print(f"four 169-megapixel PNGs at once: {[f'{s:.2f}' for _, s in said]} s each, peak memory +{grown_mb:.0f} MB")
    assert len(said) == 4
    for text, seconds in said:
        assert "13000 x 13000" in text and "at most 32 megapixels" in text, text
        assert seconds < 3, said
    assert grown_mb < 40, grown_mb
    assert "bomb" not in _stored(workspace)

    ruth.cookies.set("rp_lang", "ja")
    assert "32 メガピクセルまで" in _import(ruth, bomb, name="bomb.png")
    ruth.cookies.delete("rp_lang")
    big = b"chara\0\0" + zlib.compress(b"A" * (6 * 2**20))  # a zTXt chunk: 6 MB of text in a few kilobytes
    blank = io.BytesIO()
    Image.new("RGB", (40, 60)).save(blank, format="PNG")
    iend = blank.getvalue().rindex(b"IEND") - 4
    text_bomb = blank.getvalue()[:iend] + _chunk(b"zTXt", big) + blank.getvalue()[iend:]
    said = _import(ruth, text_bomb, name="text.png")
    assert "'chara' text is over 5 MB" in said, said
    tiny = cards.card_png(cards.Card(_card("小", "tiny", "小さなカード")))
    assert "`tiny`" in _import(ruth, tiny, name="tiny.png")  # an ordinary card PNG (chara after the picture)


def test_card_imports_count_against_the_per_login_limit(lab):
    """Finding 6: with two long replies of rita's in flight (limit_events_per_login 2), her card import is refused
    with 429 and the limit's message; ruth's import at the same moment is not."""
    url, workspace, _ = lab
    rita, ruth = _login(url, "rita"), _login(url, "ruth")
    config = _config(rita)
    fns = {d.get("api_name"): d["id"] for d in config["dependencies"]}
    box = _by_elem(config, "chat-card-import")
    file = _upload(rita, "card.json", json.dumps(_card("待", "wait", "待つカード")).encode())
    chats = [uuid.uuid4().hex for _ in range(2)]
    for session in chats:
        assert _join(rita, fns["respond"], _long_chat("長い話を聞かせて。"), session).status_code == 200
    r = _join(rita, _fn(config, (box, "upload"), [box]), [file], uuid.uuid4().hex)
    assert r.status_code == 429 and "at most 2 at once for one login" in r.json()["detail"], r.text
    assert "`wait`" in _import(ruth, _card("待", "wait", "ルースの待つカード"))
    for session in chats:
        assert _finish(rita, session).get("success")
    assert "`wait-rita`" in _import(rita, _card("待", "wait", "待つカード"))


def _send(c: httpx.Client, blob: bytes, name: str = "data.jsonl") -> httpx.Response:
    return c.post("/gradio_api/upload", files={"files": (name, blob, "application/octet-stream")})


def test_uploads_have_a_budget_per_login_and_old_ones_are_purged(lab):
    """Finding 7: rose sends twelve 9 MB files at once (30 MB per hour on this server): three are kept, nine get
    429 with Retry-After and the limit named (in Japanese with the switch's cookie); rita's upload meanwhile goes
    through. The upload left by an earlier run 30 hours ago was deleted at start; a fresh one was kept."""
    url, _, root = lab
    rose, rita = _login(url, "rose", password=ROSE), _login(url, "rita")
    blob = b"x" * (9 * 2**20)
    answers: list[httpx.Response] = []
    start = threading.Barrier(12)

    def send() -> None:
        start.wait()
        answers.append(_send(rose, blob))

    threads = [threading.Thread(target=send) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 3 + [429] * 9, [(r.status_code, r.text[:200]) for r in answers]
    refused = next(r for r in answers if r.status_code == 429)
    assert int(refused.headers["retry-after"]) > 0
    assert f"at most {BUDGET_MB} MB per 60 minutes" in refused.text and "limit_upload_mb_per_login" in refused.text
    rose.cookies.set("rp_lang", "ja")
    r = _send(rose, b"x" * (4 * 2**20))  # 27 MB kept: 4 more is past 30
    assert r.status_code == 429 and f"60 分あたり {BUDGET_MB} MB まで" in r.text, r.text
    assert _send(rita, blob).status_code == 200  # another login's budget is untouched

    cache = root / "gradio-cache"
    assert not (cache / "old-upload").exists()
    assert (cache / "fresh-upload" / "fresh.json").exists()


def test_a_nearly_full_disk_refuses_uploads_and_imports_but_not_votes(demo_build, tmp_path):
    """Finding 7: a server whose disk has less free than limit_disk_free_mb (set just above what is free): an
    upload is refused with 507 naming the space left and the setting, in the page's language; a blind pair and
    its vote still work."""
    import shutil as sh

    workspace = tmp_path / "workspace"
    sh.copytree(demo_build, workspace)
    users = _users(tmp_path / "users.yaml")
    free_mb = sh.disk_usage(tmp_path).free / 2**20
    env = {"GRADIO_TEMP_DIR": str(tmp_path / "cache"), "RP_EVAL_LIMIT_DISK_FREE_MB": str(int(free_mb + 10_000))}
    with running_app(workspace, tmp_path / "app.log", "--auth", str(users), env=env) as url:
        rita = _login(url, "rita")
        r = _send(rita, json.dumps(_card("満", "full", "満杯")).encode(), "card.json")
        assert r.status_code == 507, (r.status_code, r.text[:300])
        assert "limit_disk_free_mb" in r.text and "MB free" in r.text, r.text
        rita.cookies.set("rp_lang", "ja")
        assert "空きができるまで" in _send(rita, b"{}").text
        ((votes,),) = _sql(workspace, "SELECT count(*) FROM rating_votes")
        _vote(rita, _endpoints(rita), uuid.uuid4().hex)
        assert _sql(workspace, "SELECT count(*) FROM rating_votes") == [(votes + 1,)]


def test_a_huge_number_in_a_card_and_a_billion_laughs_recipe_get_clear_messages(lab):
    """Finding 9: a card whose `data.age` is a 4,000,000-digit number (4 MB, under the card cap), imported by a
    rater; the Merge tab's YAML box given "billion laughs" (nine levels of nine aliases: 387 million values) by
    the admin. Each answers at once with a message naming what is wrong; no traceback in the server's log."""
    url, _, root = lab
    ruth, sato = _login(url, "ruth"), _login(url, "sato", "/admin")
    log_start = len((root / "app.log").read_text(errors="replace"))
    card = json.dumps(_card("数", "number", "大きな数")).replace(
        '"first_mes"', '"age": ' + "9" * 4_000_000 + ', "first_mes"'
    )
    said = _import(ruth, card.encode(), name="number.json")
    assert "number too long to read" in said and "4300" in said, said[:300]

    lol = "merge_method: linear\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    fns = _endpoints(sato, "/admin")
    t0 = time.perf_counter()
    raw, done = _event(sato, fns["yaml_to_form"], [lol], _session(sato), "/admin")
    seconds = time.perf_counter() - t0
    assert done.get("success"), raw[-800:]
    assert "expand to more than 100000 values" in json.dumps(done["output"]["data"], ensure_ascii=False), done
    assert seconds < 5, seconds
    assert "Traceback" not in (root / "app.log").read_text(errors="replace")[log_start:]


def test_a_login_typed_in_another_width_or_case_is_the_same_rater(lab):
    """Finding 9 (user names): rita signs in as full-width "ＲＩＴＡ " and as "Rita": each session is rita's (her own
    imported cards are in her list, her chat owner is "rita"), not a new person with none of her work."""
    url, workspace, _ = lab
    for typed in ("ＲＩＴＡ ", "Rita"):
        c = httpx.Client(base_url=url, timeout=120)
        r = c.post("/login", data={"username": typed, "password": "rater password"})
        assert r.status_code == 200 and r.json()["success"], (typed, r.text)
        assert "mio-rita" in _choices(c), typed
        assert "`wait-rita`" in _import(c, _card("待", "wait", "待つカード")), typed  # her own card, replaced
    assert _stored(workspace)["wait-rita"] == ("待つカード", "rita")


def _mount_small_disk(folder: Path) -> bool:
    """A 4 MB tmpfs at `folder` (needs root; False where it can not be made)."""
    import subprocess

    folder.mkdir()
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


def test_a_full_disk_says_so_and_votes_work_again_once_there_is_room(demo_build, tmp_path):
    """Finding 9 (full disk): the database on a 4 MB disk, filled up while the server runs: a blind pair is
    refused with "the server's disk is full" (in Japanese with the switch's cookie), not "Start a new blind pair
    first."; with room made again, a pair and its vote are stored."""
    import subprocess

    disk = tmp_path / "disk"
    if not _mount_small_disk(disk):
        pytest.skip("a small tmpfs can not be mounted here (needs root)")
    try:
        workspace = tmp_path / "workspace"
        shutil.copytree(demo_build, workspace)
        shutil.move(workspace / "rp_eval.sqlite", disk / "rp_eval.sqlite")
        users = _users(tmp_path / "users.yaml")
        env = {"RP_EVAL_DATABASE_URL": f"sqlite:///{disk / 'rp_eval.sqlite'}", "GRADIO_TEMP_DIR": str(tmp_path / "c")}
        with running_app(workspace, tmp_path / "app.log", "--auth", str(users), env=env) as url:
            rita = _login(url, "rita")
            fns = _endpoints(rita)
            filler = disk / "filler"
            with filler.open("wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            pair = ["", "", "こんにちは。", 64, 0.7]
            _, done = _event(rita, fns["rate_new_pair"], pair, uuid.uuid4().hex)
            status = json.dumps(done["output"].get("data"), ensure_ascii=False)
            assert "the server's disk is full" in status, done
            rita.cookies.set("rp_lang", "ja")
            _, done = _event(rita, fns["rate_new_pair"], pair, uuid.uuid4().hex)
            assert "ディスクがいっぱい" in json.dumps(done["output"].get("data"), ensure_ascii=False), done
            filler.unlink()
            _vote(rita, fns, uuid.uuid4().hex)
        rows = _sql_file(disk / "rp_eval.sqlite", "SELECT rater FROM rating_votes WHERE rater = 'rita'")
        assert rows == [("rita",)], rows
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_server_on_loopback_answers_only_for_its_own_names(lab):
    """Finding 9 (hosts): the server listens on 127.0.0.1; a request whose Host is another site's name (what a
    page there sends after DNS rebinding points the name at 127.0.0.1) is refused with 403 naming the setting, for
    the page, the login and the API; localhost and 127.0.0.1 are answered."""
    url, _, _ = lab
    port = url.rsplit(":", 1)[1]
    for path, method in (("/config", "GET"), ("/login", "POST"), ("/v1/models", "GET")):
        r = httpx.request(method, f"{url}{path}", headers={"host": f"rebind.example:{port}"}, timeout=30)
        assert r.status_code == 403, (path, r.status_code, r.text[:200])
        assert "allowed_hosts" in r.json()["error"]["message"] and "rebind.example" in r.text, r.text
    r = httpx.get(f"{url}/config", headers={"host": "rebind.example", "accept-language": "ja"}, timeout=30)
    assert "allowed_hosts の設定" in r.json()["error"]["message"], r.text
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert httpx.get(f"{url}/login_check", headers={"host": host}, timeout=30).status_code != 403, host
