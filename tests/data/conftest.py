"""Fixtures of the data tests: an environment with no data directories of the user's, and
HTTP servers on 127.0.0.1 to download from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.web import Serve, Server


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No $FNN_DATA, and a per-user cache inside tmp_path (never the real home)."""
    monkeypatch.delenv("FNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(files, name)`` starts a server of ``files`` (file name: content) under
    ``/files/``; every server is shut down after the test."""
    servers: list[Server] = []

    def start(files: dict[str, bytes], name: str) -> Server:
        root = tmp_path / f"www-{name}"
        (root / "files").mkdir(parents=True)
        for fname, content in files.items():
            (root / "files" / fname).write_bytes(content)
        server = Server(root)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()
