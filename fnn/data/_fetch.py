"""Where named data are looked for, and how they are downloaded (private).

The one search and the one download of :func:`fnn.data.load_dataset` (the MNIST family)
and :func:`fnn.data.load_text` (known texts). A dataset or text called ``name`` is
looked for, in order, in:

1. the ``data_dir`` argument (in ``data_dir/<name>/``, then in ``data_dir`` itself);
2. ``$FNN_DATA`` (in ``$FNN_DATA/<name>/``, then in ``$FNN_DATA`` itself);
3. the per-user cache ``cache_dir/<name>/``, where ``cache_dir`` defaults to
   ``$XDG_CACHE_HOME/fnn`` or ``~/.cache/fnn``;
4. the system locations of its spec (``/usr/share/datasets/<name>``, ...).

The first directory that holds all of its files is used. A download streams a file from
the first mirror that gives a good copy into a temporary file beside its destination,
checks its size limit while it streams and its SHA-256 at the end, and only then moves
it into place atomically: a bad or partial download never reaches the cache.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from .._atomic import write_atomic

PathArg = str | os.PathLike[str]
"""A path argument: a str or an ``os.PathLike``."""


def check_options(
    name: str, data_dir: PathArg | None, mirrors: Any, download: Any, timeout: Any
) -> tuple[tuple[str, ...], float]:
    """Check the search and download arguments shared by the loaders of named data.

    Returns:
        The mirrors as a tuple and the timeout as a float.

    Raises:
        TypeError: ``mirrors`` is not a sequence of str, ``download`` not a bool, or
            ``timeout`` not a number.
        ValueError: a mirror that is not an http(s) URL, or a timeout that is not a
            positive finite number.
        FileNotFoundError: ``data_dir`` is given but is not a directory.
    """
    if isinstance(mirrors, str) or not isinstance(mirrors, Sequence):
        raise TypeError(f"mirrors must be a list of base URLs, got {mirrors!r}")
    for m in mirrors:
        if not isinstance(m, str) or not m.startswith(("http://", "https://")):
            raise ValueError(f"a mirror must be an http:// or https:// URL, got {m!r}")
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {download!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {timeout!r}")
    if not 0 < timeout < math.inf:
        raise ValueError(f"timeout must be a positive, finite number of seconds, got {timeout}")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise FileNotFoundError(
            f"data_dir {data_dir} is not a directory; pass the directory that holds the "
            f"{name} files, or leave data_dir out to search the default locations"
        )
    return tuple(mirrors), float(timeout)


def cache_root(cache_dir: PathArg | None) -> Path:
    """The per-user cache root: ``cache_dir``, else ``$XDG_CACHE_HOME/fnn`` (when an
    absolute path), else ``~/.cache/fnn``."""
    if cache_dir is not None:
        return Path(cache_dir)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "fnn"
    return Path.home() / ".cache" / "fnn"


def locations(
    name: str, data_dir: PathArg | None, cache: Path, system_dirs: Sequence[str]
) -> list[tuple[str, Path]]:
    """The directories to search for ``name``'s files, in order, each with where it came
    from (``"data_dir"``, ``"$FNN_DATA"``, ``"cache"``, ``"system"``), without repeats."""
    candidates: list[tuple[str, Path]] = []
    if data_dir is not None:
        base = Path(data_dir)
        candidates += [("data_dir", base / name), ("data_dir", base)]
    env = os.environ.get("FNN_DATA", "")
    if env:
        candidates += [("$FNN_DATA", Path(env) / name), ("$FNN_DATA", Path(env))]
    candidates.append(("cache", cache))
    candidates += [("system", Path(d)) for d in system_dirs]
    seen: set[Path] = set()
    unique = []
    for where, path in candidates:
        if path not in seen:
            seen.add(path)
            unique.append((where, path))
    return unique


def find(
    directory: Path, names: Sequence[str], suffixes: Sequence[str] = ("",)
) -> tuple[list[Path] | None, str]:
    """The files ``names`` in ``directory`` (each the first of its ``name + suffix`` that is
    a file, in the order of ``suffixes``), or None and why not."""
    if not directory.is_dir():
        return None, "no such directory"
    found: list[Path] = []
    missing: list[str] = []
    for name in names:
        for candidate in (directory / f"{name}{s}" for s in suffixes):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            missing.append(name)
    if missing:
        return None, f"{len(found)} of {len(names)} files, missing {', '.join(missing)}"
    return found, "complete"


def search(
    places: Sequence[tuple[str, Path]], names: Sequence[str], suffixes: Sequence[str] = ("",)
) -> tuple[tuple[Path, list[Path]] | None, list[str]]:
    """The first of ``places`` that holds all of ``names`` (see :func:`find`), with the
    files found there, or None; and a report line for each place that did not."""
    reports: list[str] = []
    for where, directory in places:
        found, report = find(directory, names, suffixes)
        if found is not None:
            return (directory, found), reports
        reports.append(f"{directory} ({where}): {report}")
    return None, reports


class _BadDownloadError(Exception):
    """A mirror answered, but not with the expected file."""


def download(
    remote: str,
    sha256: str,
    target: Path,
    mirrors: Sequence[str],
    timeout: float,
    limit: int,
    over_limit: str = "; not the file",
) -> list[str]:
    """Download ``remote`` (a file name under each mirror's base URL) to ``target``.

    Mirrors are tried in order until one gives a file of at most ``limit`` bytes whose
    SHA-256 is ``sha256``; the directory of ``target`` is created if needed. A mirror
    sending more than ``limit`` bytes is reported as "more than ``limit`` bytes" and
    ``over_limit``, what that means: for a file of known size, that it is not the file;
    for a limit the caller chose, how to raise it.

    Returns:
        Nothing when ``target`` holds the verified file; otherwise one line per mirror
        saying why it failed (or that there are no mirrors, or why the cache directory
        could not be made), and nothing is left at ``target`` or beside it.
    """
    if not mirrors:
        return ["no mirrors to download from"]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"cannot create the cache directory {target.parent}: {e}"]
    errors = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{remote}"
        try:
            write_atomic(target, _fetch(url, sha256, timeout, limit, over_limit))
            return []
        except _BadDownloadError as e:
            errors.append(f"{url}: {e}")
        except (OSError, http.client.HTTPException, ValueError) as e:
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            errors.append(f"{url}: {type(e).__name__}: {reason}")
    return errors


def _fetch(
    url: str, sha256: str, timeout: float, limit: int, over_limit: str
) -> Callable[[BinaryIO], None]:
    """A writer for :func:`write_atomic` that streams ``url`` and checks its SHA-256.

    Raising inside the writer makes ``write_atomic`` discard the temporary file, so a
    bad or partial download never reaches its final name.
    """

    def write(out: BinaryIO) -> None:
        h = hashlib.sha256()
        total = 0
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 16):
                total += len(chunk)
                if total > limit:
                    raise _BadDownloadError(f"more than {limit} bytes{over_limit}")
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha256:
            raise _BadDownloadError(
                f"checksum mismatch: SHA-256 {h.hexdigest()} ({total} bytes), expected {sha256}"
            )

    return write


def not_found_message(
    name: str,
    looked_for: str,
    reports: Sequence[str],
    download: bool,
    failures: Sequence[str],
    hints: Sequence[str],
) -> str:
    """The message of the FileNotFoundError of data found nowhere: every place looked at,
    in order, what the download did, and ``hints``, the ways to get the files."""
    lines = [
        f"{name} not found: looked for {looked_for} in these directories, in order:",
        *(f"  {i}. {r}" for i, r in enumerate(reports, 1)),
    ]
    if not download:
        lines.append("Download not attempted (download=False).")
    else:
        lines.append("Download failed:")
        lines += [f"  {e}" for e in failures]
    lines.append("To get the files:")
    lines += [f"  - {h}" for h in hints]
    return "\n".join(lines)
