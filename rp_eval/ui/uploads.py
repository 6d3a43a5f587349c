"""Where a file handed to an event handler came from: only a file this server received as an upload.

Gradio copies an uploaded file into its upload folder and hands the handler that copy. A client can also name
any server path in a file input's data (`{"path": "/srv/.../rp_eval.sqlite", "meta": {"_type":
"gradio.FileData"}}`); Gradio's own check refuses those only for apps it launched, so the server also turns it
on for the mounted pages (rp_eval.server), and every handler that opens a file checks the path here too.
"""

from __future__ import annotations

from pathlib import Path

from gradio.utils import get_upload_folder

from rp_eval import paths
from rp_eval.errors import RpEvalError


class NotUploaded(RpEvalError):
    """A file input that names a path this server did not receive as an upload."""


def uploaded(path: str | Path) -> Path:
    """`path` resolved, if it lies in Gradio's upload folder; else NotUploaded (the same message whether or not
    the file exists, so the answer says nothing about the server's files)."""
    root = Path(get_upload_folder()).resolve()
    try:
        resolved = Path(str(path)).resolve()
    except (OSError, RuntimeError, ValueError):
        resolved = None
    if resolved is None or not resolved.is_relative_to(root) or not resolved.is_file() or _store_file(resolved):
        raise NotUploaded("only a file uploaded through this page can be used here")
    return resolved


def _store_file(resolved: Path) -> bool:
    # the database or users file itself (a workspace or database placed in the upload folder): the same refusal
    try:
        paths.refuse_store_files(resolved)
    except paths.PathNotAllowed:
        return True
    return False
