"""Chat preferences on a lab server (`python app.py --auth users.yaml`), over plain HTTP as the page sends its
events: ruth picks a side of her side-by-side chat; rita neither sees nor deletes ruth's preference (by its number,
by a word, by nothing); ruth sees hers, and the Leaderboard counts it until she deletes it."""

from __future__ import annotations

import shutil
import uuid

import pytest

from rp_eval import auth
from tests.conftest import running_app
from tests.reliability.test_lab_safety import MODELS, _chat_inputs, _endpoints, _event, _sql
from tests.reliability.test_lab_trust import _login

PASSWORDS = {"sato": "admin password", "rita": "rater password", "ruth": "another rater"}


@pytest.fixture(scope="module")
def lab(demo_build, tmp_path_factory):
    root = tmp_path_factory.mktemp("labprefs")
    workspace = root / "workspace"
    shutil.copytree(demo_build, workspace)
    users = root / "users.yaml"
    for name, password in PASSWORDS.items():
        auth.add_user(users, name, password, "admin" if name == "sato" else "rater")
    with running_app(workspace, root / "app.log", "--auth", str(users), env={"RP_EVAL_API_KEY": ""}) as url:
        yield url, workspace


def _text(done: dict) -> str:
    return str(done["output"]["data"])


def test_a_side_picked_is_the_pickers_alone_and_counts_in_the_leaderboard(lab):
    url, workspace = lab
    ruth, rita = _login(url, "ruth", password=PASSWORDS["ruth"]), _login(url, "rita", password=PASSWORDS["rita"])
    fns = _endpoints(ruth)
    session = uuid.uuid4().hex
    _, done = _event(ruth, fns["chat_prefer_b"], [None], session)  # before any chat: a message, no row
    assert "start a conversation first" in _text(done)
    inputs = _chat_inputs("秘密の小箱はどこ？")
    inputs[4], inputs[5] = MODELS[2], True  # side by side: demo-llama-a and demo-mistral
    _, done = _event(ruth, fns["respond"], inputs, session)
    assert done.get("success"), done
    _, done = _event(ruth, fns["chat_prefer_b"], [None], session)
    assert "side B's last reply is the better one" in _text(done)
    rows = _sql(workspace, "SELECT id, owner, kind, chosen_model, rejected_model FROM chat_preferences")
    [(pref_id, owner, kind, chosen, rejected)] = rows
    assert (owner, kind, chosen, rejected) == ("ruth", "side", MODELS[2], MODELS[0])

    # rita: her list is empty; deleting ruth's row by its number, by a word, or with nothing picked deletes nothing
    other = uuid.uuid4().hex
    _, done = _event(rita, fns["chat_preferences_show"], [], other)
    assert "No chat preferences of yours" in _text(done) and MODELS[2] not in _text(done)
    for picked, said in (([pref_id], "not deleted"), (["abc"], "not deleted"), ([], "pick the preferences")):
        _, done = _event(rita, fns["chat_preferences_delete"], [picked], other)
        assert said in _text(done) and MODELS[2] not in _text(done), (picked, done)
    assert len(_sql(workspace, "SELECT id FROM chat_preferences")) == 1

    # ruth sees hers; the Leaderboard's combined ranking counts it as a chat vote
    _, done = _event(ruth, fns["chat_preferences_show"], [], session)
    assert "1 preferences of yours" in _text(done) and MODELS[2] in _text(done)
    board = ["", "", [], "", "", 200, "equal", "all"]
    _, done = _event(ruth, fns["leaderboard_refresh"], board, session)
    assert "chat preferences: 1 votes from 1 raters" in _text(done), done

    _, done = _event(ruth, fns["chat_preferences_delete"], [[pref_id]], session)
    assert "Deleted 1 preferences" in _text(done)
    _, done = _event(ruth, fns["leaderboard_refresh"], board, session)
    assert "No combined ranking yet: no votes to rank from" in _text(done), done
