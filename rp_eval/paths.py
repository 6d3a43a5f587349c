"""Paths typed by a person in the UI or the HTTP API, confined to allowed roots.

Allowed: the workspace (`settings.home()`), the project's own data folders (`prompts/`, `merges/`, whose files
the forms offer by default) and the folders of the `allowed_roots` setting. Symlinks are resolved first, so
`../../etc/passwd` and a link in the workspace that points out of it are both refused.

Who is confined: the web page and the HTTP API, used by whoever can reach the server. The CLI is not: it runs
as its user, in that user's own shell, with that user's file permissions, so it reads any path it is given.

Inside the roots, the store's own files are refused wherever they lie (`refuse_store_files`): the SQLite database
and its `-wal`, `-shm` and `-journal` files, the login's users file, the workspace's internal folders (`run/`,
`evolve/`, `hub_sync/`), and a folder that holds any of them. Opening the database from another connection in the
server's process and closing it drops SQLite's POSIX locks for the whole process, after which a backup could
delete the write-ahead log under acknowledged votes; so no typed path and no file input may reach them.

A model source that is not a local path (a Hugging Face id such as `owner/name`) is passed through unchanged:
the hub is not a file system.
"""

from __future__ import annotations

from pathlib import Path

from rp_eval import settings
from rp_eval.errors import MESSAGES, RpEvalError, Said

PROJECT = Path(__file__).resolve().parents[1]
DATA_FOLDERS = ("prompts", "merges")  # shipped data the forms offer (tasks, personas, recipes, training sets)
INTERNAL_FOLDERS = ("run", "evolve", "hub_sync")  # the workspace's own state: stop flags, checkpoints, sync copies
DATABASE_SUFFIXES = ("", "-wal", "-shm", "-journal")
_users_files: set[Path] = set()  # users files the running server reads (server.py registers --auth)


class PathNotAllowed(RpEvalError):
    """A path outside every allowed root."""


def allowed_roots() -> list[Path]:
    """The folders a typed path may lie in, symlinks resolved, without repeats."""
    roots = [settings.home(), *(PROJECT / d for d in DATA_FOLDERS)]
    roots += [Path(r).expanduser() for r in settings.config().allowed_roots]
    return list(dict.fromkeys(r.resolve() for r in roots))


def confine(path: str | Path, what: str = "path") -> Path:
    """`path` resolved (symlinks followed, relative to the working folder), or PathNotAllowed if it lies outside
    every allowed root. The file need not exist yet (a path to write to is checked the same way)."""
    text = str(path).strip()
    what = _noun(what)
    if len(text) > 4096:
        raise PathNotAllowed(key="err_path_too_long", what=what, n=len(text))
    if not text:
        raise PathNotAllowed(key="err_path_none", what=what)
    if "\x00" in text:
        raise PathNotAllowed(key="err_path_nul", what=what, text=repr(text))
    try:
        resolved = Path(text).expanduser().resolve()
    except (OSError, RuntimeError) as err:  # a name too long, a symlink loop
        raise PathNotAllowed(key="err_path_unusable", what=what, text=text[:200], detail=err) from err
    roots = allowed_roots()
    if not any(resolved.is_relative_to(root) for root in roots):
        key = "err_path_outside" if str(resolved) == text else "err_path_outside_resolved"
        raise PathNotAllowed(key=key, what=what, text=text, resolved=resolved, roots=", ".join(map(str, roots)))
    refuse_store_files(resolved, what, text)
    return resolved


def protect_users_file(path: str | Path) -> None:
    """Refuse `path` (a users YAML the server reads) to every typed path and file input from now on."""
    _users_files.add(Path(path).expanduser().resolve())


def store_files() -> tuple[list[Path], list[Path]]:
    """(files, folders) no typed path may name, symlinks resolved: the SQLite database and its companions, the
    users files, the workspace's internal folders."""
    files: list[Path] = []
    url = settings.database_url()
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if database and database != ":memory:":
            db = Path(database).expanduser().resolve()
            files += [db.with_name(db.name + suffix) for suffix in DATABASE_SUFFIXES]
    auth = settings.config().auth
    users = {*_users_files, *([Path(auth).expanduser().resolve()] if auth else [])}
    files += sorted(users)
    home = settings.home()
    return files, [(home / d).resolve() for d in INTERNAL_FOLDERS]


def refuse_store_files(resolved: Path, what: str = "path", text: str | None = None) -> None:
    """PathNotAllowed if `resolved` (already resolved) is one of the store's files, lies in an internal folder,
    is a folder that holds one, or is the same file under another name (a hard link)."""
    files, folders = store_files()
    hit = next((f for f in files if resolved == f or f.is_relative_to(resolved)), None)
    hit = hit or next((d for d in folders if resolved.is_relative_to(d) or d.is_relative_to(resolved)), None)
    if hit is None and resolved.is_file():
        try:
            here = resolved.stat()
            hit = next((f for f in files if f.exists() and _same(f.stat(), here)), None)
        except OSError:
            hit = None
    if hit is not None:
        raise PathNotAllowed(key="err_path_store", what=what, text=text if text is not None else str(resolved))


def _same(a, b) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _noun(what: str) -> str:
    # what the path is for, as a message the page words in its own language when it is one of the known ones
    key = "path_" + what.replace(" ", "_")
    return Said(key) if key in MESSAGES else what


def is_local(source: str) -> bool:
    """Whether a model or data source names a local path (else it is a hub id such as `owner/name`)."""
    source = source.strip()
    if source.startswith((".", "/", "~", "\\")) or ".." in Path(source).parts or "\\" in source:
        return True
    try:
        return "\x00" in source or len(source) > 1000 or Path(source).expanduser().exists()
    except (OSError, ValueError):  # a name the file system can not even look up
        return True


def confine_source(source: str, what: str = "model folder") -> str:
    """A model / adapter / data-set source as typed: a hub id unchanged, a local path confined and resolved."""
    source = (source or "").strip()
    if not source or not is_local(source):
        return source
    return str(confine(source, what))


def confine_model_ref(ref: str) -> str:
    """A model named in a recipe or genome: a registered model's name is fine as it is (its folder was checked
    when it was registered); anything else is a source and is confined."""
    from rp_eval.store import get_store

    if get_store().get_model(ref) is not None:
        return ref
    return confine_source(ref, "model")
