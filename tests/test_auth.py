"""Lab-server login: hashed passwords, raters' page without the admin tabs, admins on /admin."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rp_eval import auth
from rp_eval.auth import AuthError, Login
from tests.conftest import CHROMIUM, FLAGS, ROOT, running_app


def test_passwords_are_hashed_and_checked(tmp_path):
    path = tmp_path / "users.yaml"
    auth.add_user(path, "sato", "correct horse", "admin")
    auth.add_user(path, "suzuki", "battery staple", "rater")
    text = path.read_text()
    assert "correct horse" not in text and "pbkdf2_sha256$" in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    login, admin_login = Login(path), Login(path, admins_only=True)
    assert login("sato", "correct horse") and login("suzuki", "battery staple")
    assert not login("sato", "wrong") and not login("nobody", "correct horse")
    assert admin_login("sato", "correct horse") and not admin_login("suzuki", "battery staple")
    auth.remove_user(path, "suzuki")
    assert not login("suzuki", "battery staple")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("users: [unclosed", "can not be read"),
        ("people: []", "expected a 'users:' list"),
        ("users:\n  - name: a\n    role: admin\n", "users\\[0\\] has no 'password'"),
        ("users:\n  - name: a\n    role: boss\n    password: x\n", "admin or rater"),
        ("users:\n  - name: a\n    role: admin\n    password: hunter2\n", "must be a hash"),
    ],
)
def test_broken_users_files_are_named(tmp_path, body, message):
    path = tmp_path / "users.yaml"
    path.write_text(body)
    with pytest.raises(AuthError, match=message):
        Login(path)


def test_short_password_and_cli(tmp_path):
    path = tmp_path / "users.yaml"
    with pytest.raises(AuthError, match="at least 8"):
        auth.add_user(path, "x", "short")
    assert not path.exists()
    env = {**os.environ, "RP_EVAL_HOME": str(tmp_path / "ws")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rp_eval",
            "users",
            "add",
            "kato",
            "--role",
            "admin",
            "--file",
            str(path),
            "--password-stdin",
        ],
        input="long enough pw\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert Login(path, admins_only=True)("kato", "long enough pw")


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users.yaml"
    auth.add_user(path, "sato", "admin password", "admin")
    auth.add_user(path, "suzuki", "rater password", "rater")
    return path


def login(page, url, name, password):
    page.goto(url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def test_login_raters_and_admins_in_two_browsers_at_once(demo_workspace, tmp_path, users, artifacts):
    from playwright.sync_api import sync_playwright

    with running_app(demo_workspace, tmp_path / "app.log", "--auth", str(users)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        rater = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        admin = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()

        login(rater, url, "suzuki", "not it")
        rater.get_by_text("Incorrect Credentials").wait_for(timeout=30_000)
        rater.screenshot(path=str(artifacts / "login-wrong-password.png"))

        login(rater, url, "suzuki", "rater password")
        login(admin, f"{url}/admin", "sato", "admin password")
        rater.get_by_role("tab", name="Chat").wait_for(timeout=60_000)
        admin.get_by_role("tab", name="Models").wait_for(timeout=60_000)
        assert rater.get_by_role("tab", name="Models").count() == 0
        rater.screenshot(path=str(artifacts / "login-rater-page.png"))
        admin.screenshot(path=str(artifacts / "login-admin-page.png"))

        other = browser.new_context().new_page()  # a rater can not use the admin page
        login(other, f"{url}/admin", "suzuki", "rater password")
        other.get_by_text("Incorrect Credentials").wait_for(timeout=30_000)
        browser.close()


def test_throttle_waits_longer_after_each_failure_and_forgets_a_name_on_success(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    t = auth.Throttle(free=3, longest=10)
    for _ in range(3):
        assert t.wait("ken", "10.0.0.1") == 0
        t.failed("ken", "10.0.0.1")
    assert t.wait("ken", "10.0.0.1") == 2 and t.wait("ken", "10.0.0.2") == 2  # the name is locked everywhere
    assert t.wait("rin", "10.0.0.1") == 0  # the address is not, yet (it may fail 12 times)
    now[0] += 2
    t.failed("ken", "10.0.0.1")
    assert t.wait("ken", "10.0.0.9") == 4
    now[0] += 100
    for _ in range(5):
        t.failed("ken", "10.0.0.1")
    assert t.wait("ken", "10.0.0.9") == 10  # never more than `longest`
    t.succeeded("ken")
    assert t.wait("ken", "10.0.0.9") == 0
    for i in range(12):
        t.failed(f"guess{i}", "10.0.0.1")
    assert t.wait("sato", "10.0.0.1") > 0 and t.wait("sato", "10.0.0.2") == 0


def test_an_unknown_name_is_checked_against_a_hash_too(tmp_path, monkeypatch):
    path = tmp_path / "users.yaml"
    auth.add_user(path, "sato", "admin password", "admin")
    checked = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda p, h: checked.append(h) or real(p, h))
    login = auth.Login(path)
    assert not login("nobody", "admin password") and not login("sato", "wrong")
    assert len(checked) == 2 and all(h.startswith("pbkdf2_sha256$600000$") for h in checked)
    assert login("sato", "admin password")


def test_user_names_are_one_form_and_an_existing_user_is_replaced_only_on_purpose(tmp_path):
    """Finding 9 (user names): with sato in the file, `users add` of " sato ", "Sato" and full-width "ｓａｔｏ" is
    refused naming sato and --replace; `users add sato --replace` gives a new password; one account throughout,
    and each of those spellings logs in as it."""
    path = tmp_path / "users.yaml"
    auth.add_user(path, "sato", "first password", "admin")
    env = {**os.environ, "RP_EVAL_HOME": str(tmp_path / "ws")}

    def cli(*args: str, password: str = "second password") -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "rp_eval", "users", *args, "--file", str(path), "--password-stdin"]
        return subprocess.run(command, input=password + "\n", capture_output=True, text=True, cwd=ROOT, env=env)

    for spelling in (" sato ", "Sato", "ｓａｔｏ", "sato"):
        out = cli("add", spelling)
        assert out.returncode == 2, (spelling, out.stdout, out.stderr)
        assert "a user 'sato' already exists" in out.stderr and "--replace" in out.stderr, out.stderr
    assert Login(path)("sato", "first password")
    out = cli("add", "ｓａｔｏ", "--role", "admin", "--replace")
    assert out.returncode == 0, out.stderr
    assert list(auth.load_users(path)) == ["sato"]
    for spelling in ("sato", "Sato", " ＳＡＴＯ "):
        assert Login(path, admins_only=True)(spelling, "second password"), spelling
    assert not Login(path)("sato", "first password")
