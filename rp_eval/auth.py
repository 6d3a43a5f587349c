"""Lab-server login: a users YAML with hashed passwords and a role per person (admin or rater).

    users:
      - name: sato
        role: admin
        password: pbkdf2_sha256$600000$<salt>$<hash>

`rp-eval users add NAME --role rater` writes an entry (the password is read from the terminal or stdin, and
only its hash is stored). PBKDF2-SHA256 from the standard library: no extra dependency for one hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from rp_eval.errors import RpEvalError

Role = Literal["admin", "rater"]
ITERATIONS = 600_000


class AuthError(RpEvalError):
    pass


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password: str  # the hash


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(got, base64.b64decode(digest))


def load_users(path: str | Path) -> dict[str, User]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise AuthError(f"users file {path} can not be read: {err}") from err
    entries = data.get("users") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise AuthError(f"users file {path}: expected a 'users:' list")
    users = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise AuthError(f"users file {path}: users[{i}] must be a mapping with name, role, password")
        missing = [k for k in ("name", "role", "password") if not entry.get(k)]
        if missing:
            raise AuthError(f"users file {path}: users[{i}] has no '{missing[0]}'")
        if entry["role"] not in ("admin", "rater"):
            raise AuthError(f"users file {path}: users[{i}].role must be admin or rater, not '{entry['role']}'")
        if not str(entry["password"]).startswith("pbkdf2_sha256$"):
            raise AuthError(f"users file {path}: users[{i}].password must be a hash (use rp-eval users add)")
        users[str(entry["name"])] = User(str(entry["name"]), entry["role"], str(entry["password"]))
    return users


def save_users(path: str | Path, users: dict[str, User]) -> None:
    """Write the users file atomically (a temporary file moved into place)."""
    path = Path(path)
    body = {"users": [{"name": u.name, "role": u.role, "password": u.password} for u in users.values()]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(body, fh, allow_unicode=True, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def add_user(path: str | Path, name: str, password: str, role: Role = "rater") -> None:
    name = name.strip()
    if not name:
        raise AuthError("a user needs a name")
    if len(password) < 8:
        raise AuthError("the password must have at least 8 characters")
    users = load_users(path) if Path(path).exists() else {}
    users[name] = User(name, role, hash_password(password))
    save_users(path, users)


def remove_user(path: str | Path, name: str) -> None:
    users = load_users(path)
    if name not in users:
        raise AuthError(f"no user named '{name}' in {path}")
    del users[name]
    save_users(path, users)


_ACTIVE: list[Path] = []  # the users file of the running lab server (set by Login), for role checks in handlers


def is_admin(username: str | None) -> bool:
    """Whether `username` is an admin of the running lab server; True when no login is in use (a local app's
    one user may do everything)."""
    if not _ACTIVE:
        return True
    user = load_users(_ACTIVE[0]).get(username or "")
    return user is not None and user.role == "admin"


class Login:
    """The check Gradio calls at login; `admins_only` for the admin page. Reads the file at every login, so
    adding a user needs no restart. A wrong name and a wrong password look the same to the person."""

    def __init__(self, path: str | Path, admins_only: bool = False) -> None:
        self.path, self.admins_only = Path(path), admins_only
        load_users(self.path)  # fail at start, not at the first login, when the file is broken
        _ACTIVE[:] = [self.path]

    def __call__(self, username: str, password: str) -> bool:
        user = load_users(self.path).get(username)
        ok = user is not None and verify_password(password, user.password)
        return ok and (user.role == "admin" or not self.admins_only)
