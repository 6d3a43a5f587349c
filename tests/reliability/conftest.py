"""Fixtures of the reliability tests: one app over a copy of the demo workspace, shared by a module's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import running_app


@pytest.fixture(scope="module")
def shared_app(demo_build, tmp_path_factory) -> tuple[str, Path, Path]:
    """`python app.py` over this module's own copy of the demo workspace: (URL, workspace, log file)."""
    root = tmp_path_factory.mktemp("app")
    workspace = root / "workspace"
    shutil.copytree(demo_build, workspace)
    log = root / "app.log"
    with running_app(workspace, log) as url:
        yield url, workspace, log
