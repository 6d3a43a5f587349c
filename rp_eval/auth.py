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
import sys
import tempfile
import threading
import time
import unicodedata
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
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
    password_bytes = password.encode("utf-8", "surrogatepass")  # a lone surrogate is a wrong password, not a crash
    got = hashlib.pbkdf2_hmac("sha256", password_bytes, base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(got, base64.b64decode(digest))


def canonical(name: str) -> str:
    """A user name as the server keeps it: NFKC (full-width ｓａｔｏ is sato), no spaces around, case-folded (Sato
    is sato). Logins, the users file's look-ups and `users add` all go through it, so one person is one account."""
    return unicodedata.normalize("NFKC", str(name)).strip().casefold()


def load_users(path: str | Path) -> dict[str, User]:
    """The users of the file by their canonical name (`canonical`)."""
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
        key = canonical(entry["name"])
        if key in users:
            raise AuthError(
                f"users file {path}: '{users[key].name}' and '{entry['name']}' are the same name once spaces, width "
                "and case are ignored: remove one (rp-eval users remove)"
            )
        users[key] = User(str(entry["name"]), entry["role"], str(entry["password"]))
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


def add_user(path: str | Path, name: str, password: str, role: Role = "rater", replace: bool = False) -> None:
    """Add a user under their canonical name; an existing one (the same name once spaces, width and case are
    ignored) only with `replace` (a new password or role), never by accident."""
    key = canonical(name)
    if not key:
        raise AuthError("a user needs a name")
    if len(password) < 8:
        raise AuthError("the password must have at least 8 characters")
    users = load_users(path) if Path(path).exists() else {}
    if key in users and not replace:
        same = (
            "" if users[key].name == name else f" ('{name}' is the same name once spaces, width and case are ignored)"
        )
        raise AuthError(
            f"a user '{users[key].name}' already exists in {path}{same}: add --replace to give them a new password "
            "or role"
        )
    users[key] = User(key, role, hash_password(password))
    save_users(path, users)


def remove_user(path: str | Path, name: str) -> None:
    users = load_users(path)
    if canonical(name) not in users:
        raise AuthError(f"no user named '{name}' in {path}")
    del users[canonical(name)]
    save_users(path, users)


CLIENT_ADDRESS: ContextVar[str] = ContextVar("client_address", default="?")  # set by rp_eval.guard per request


@cache
def _dummy() -> str:  # checked for unknown names, so they take as long as known ones
    return hash_password("not a password of anyone")


_ACTIVE: list[Path] = []  # the users file of the running lab server (set by Login), for role checks in handlers


def is_admin(username: str | None) -> bool:
    """Whether `username` is an admin of the running lab server; True when no login is in use (a local app's
    one user may do everything)."""
    if not _ACTIVE:
        return True
    user = users_file(_ACTIVE[0]).users().get(username or "")
    return user is not None and user.role == "admin"


def version(user: User | None) -> str:
    """What a session remembers of its user: a digest of the name, role and password hash, so a new password
    (a new salt and hash), another role or the entry's removal gives another value (None: no such user)."""
    if user is None:
        return ""
    return hashlib.sha256(f"{user.name}\0{user.role}\0{user.password}".encode()).hexdigest()


class UsersFile:
    """The users file, read again whenever it changed on disk (its inode, size or modification time: `save_users`
    moves a new file into place), else served from memory; a file that can not be read counts as no users."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._seen: tuple | None = None
        self._users: dict[str, User] = {}
        self._lock = threading.Lock()

    def users(self) -> dict[str, User]:
        try:
            st = self.path.stat()
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            seen = None
        with self._lock:
            if seen != self._seen:
                try:
                    self._users = load_users(self.path) if seen is not None else {}
                except AuthError as err:
                    audit(f"users file unreadable, every session refused ({err})", "", "")
                    self._users = {}
                self._seen = seen
            return self._users


_FILES: dict[Path, UsersFile] = {}


def users_file(path: str | Path) -> UsersFile:
    """The one `UsersFile` of `path` in this process (the pages, their sessions and role checks share it)."""
    return _FILES.setdefault(Path(path), UsersFile(path))


class Sessions(dict):
    """A page's signed-in sessions, in place of Gradio's `app.tokens` (token -> user name): each session also
    keeps the `version` of its user at login, and a look-up (every request Gradio checks the login of) answers
    the name only while the users file still has that user at that version. A password change, a role change or
    the user's removal so ends every session of theirs at its next request, with no restart."""

    def __init__(self, users: UsersFile) -> None:
        super().__init__()
        self.file = users
        self._versions: dict[str, str] = {}

    def __setitem__(self, token: str, name: str) -> None:  # a login
        name = canonical(name)  # as typed (ＲＩＴＡ, " Rita "): the session, owners and roles use the one form
        self._versions[token] = version(self.file.users().get(name))
        super().__setitem__(token, name)

    def _current(self, token) -> bool:
        name = super().get(token)
        if name is None:
            return False
        if self._versions.get(token) and self._versions[token] == version(self.file.users().get(name)):
            return True
        audit("session ended (the user changed in the users file)", name, CLIENT_ADDRESS.get())
        super().pop(token, None)
        self._versions.pop(token, None)
        return False

    def get(self, token, default=None):
        return super().get(token) if self._current(token) else default

    def __getitem__(self, token):
        if not self._current(token):
            raise KeyError(token)
        return super().__getitem__(token)

    def __contains__(self, token) -> bool:
        return self._current(token)

    def __delitem__(self, token) -> None:
        self._versions.pop(token, None)
        super().__delitem__(token)


class Throttle:
    """Failed logins per name and per address: after `free` failures (four times as many for an address, which
    many people may share) every further try waits 2, 4, 8 ... seconds (at most `longest`) after the last
    failure; a try inside that wait is refused without looking at the password. A success clears the name."""

    def __init__(self, free: int = 5, longest: float = 300.0) -> None:
        self.free, self.longest = free, longest
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.Lock()

    def _wait(self, key: tuple[str, str]) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        free = self.free * (4 if key[0] == "address" else 1)
        if count < free:
            return 0.0
        return max(0.0, last + min(self.longest, 2.0 ** (count - free + 1)) - time.monotonic())

    def wait(self, name: str, address: str) -> float:
        """Seconds until `name` from `address` may try again (0: now)."""
        with self._lock:
            return max(self._wait(("name", name)), self._wait(("address", address)))

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            now = time.monotonic()
            for key in (("name", name), ("address", address)):
                count, _ = self._failures.get(key, (0, 0.0))
                self._failures[key] = (count + 1, now)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(("name", name), None)


def audit(event: str, name: str, address: str) -> None:
    """One line on the server's log for a failed or refused login (names shown escaped: no forged lines)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"{stamp} auth: {event} for name {ascii(name)[:80]} from {ascii(address)}", file=sys.stderr, flush=True)


HASHING = max(1, (os.cpu_count() or 2) // 2)  # password checks run at once on a server
_HASHING = None  # their anyio.CapacityLimiter


class Login:
    """The check Gradio calls at login; `admins_only` for the admin page. Reads the file at every login, so
    adding a user needs no restart. A wrong name and a wrong password look the same to the person and take
    the same time (an unknown name is checked against a dummy hash); repeated failures slow down (Throttle).

    The server is given `check`, the same test run in a worker thread: Gradio calls a plain function on its
    event loop, where the hash (a few tenths of a second by design) would hold up every other request."""

    def __init__(self, path: str | Path, admins_only: bool = False, throttle: Throttle | None = None) -> None:
        from rp_eval import settings

        self.path, self.admins_only = Path(path), admins_only
        load_users(self.path)  # fail at start, not at the first login, when the file is broken
        _dummy()  # made now, so the first unknown name takes no longer than the others
        self.throttle = throttle or Throttle(settings.config().limit_login_failures)
        _ACTIVE[:] = [self.path]

    async def check(self, username: str, password: str) -> bool:
        """`self(username, password)` off the event loop; at most `HASHING` hashes at once, so a burst of logins
        leaves cores for everything else (the logins wait their turn, other requests do not)."""
        import anyio

        global _HASHING
        if _HASHING is None:  # made on the server's event loop
            _HASHING = anyio.CapacityLimiter(HASHING)
        address = CLIENT_ADDRESS.get()  # read here: the worker thread has no request
        return await anyio.to_thread.run_sync(self.__call__, username, password, address, limiter=_HASHING)

    def __call__(self, username: str, password: str, address: str | None = None) -> bool:
        address = address or CLIENT_ADDRESS.get()
        username = canonical(username)  # the session keeps the same form (Sessions)
        wait = self.throttle.wait(username, address)
        if wait > 0:
            audit(f"login refused (too many failures, {wait:.0f} s to wait)", username, address)
            return False
        user = load_users(self.path).get(username)
        ok = verify_password(password, user.password if user is not None else _dummy()) and user is not None
        ok = ok and (user.role == "admin" or not self.admins_only)
        if ok:
            self.throttle.succeeded(username)
        else:
            self.throttle.failed(username, address)
            audit("login failed", username, address)
        return ok
