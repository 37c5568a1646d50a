"""Text for character-level models: load a corpus, encode it, split it, cut it in windows.

:func:`load_text` reads a UTF-8 file, or a known text found by name (Tiny Shakespeare),
into a :class:`Text`: the vocabulary (the sorted distinct characters, as nanoGPT's
``data/shakespeare_char/prepare.py`` builds it) and the whole text as int32 ids.
:func:`split_text` cuts the ids in a first part to train on and a last part to validate
on; :func:`random_windows` draws a batch of training windows from a key and
:func:`fixed_windows` cuts a whole split in consecutive windows, to measure a loss over
all of it. A window of ``context + 1`` consecutive ids gives an input ``x = window[:-1]``
and a target ``y = window[1:]``: each position predicts the next character.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np
from numpy.typing import ArrayLike

from .. import _checks
from .. import random as _random
from .._files import open_regular
from .._types import Array
from ._datasets import readonly
from ._errors import DataError
from ._fetch import (
    PathArg,
    cache_root,
    check_options,
    download,
    locations,
    not_found_message,
    search,
)
from ._idx import check_max_bytes

MAX_TEXT_BYTES = 1 << 26
"""The largest text file :func:`load_text` reads by default: 64 MiB."""

_MIN_CHARS = 2
"""The fewest distinct characters a text may hold: with one, there is nothing to predict."""


@attrs.frozen
class TextSpec:
    """A known text: the file's name and checksum, and where to download it from.

    Attributes:
        name: the name :func:`load_text` takes; also the subdirectory looked in under
            ``data_dir``, ``$FNN_DATA`` and the cache.
        file: the file's name in those directories, e.g. ``"tinyshakespeare.txt"``.
        sha256: the SHA-256 (hex) of the file's bytes; a file found or downloaded is
            used only if it matches.
        mirrors: base URLs to download the file from, tried in order.
        remote: the file's name under each mirror (default: ``file``).
        system_dirs: directories a system package installs the file into.

    Use ``attrs.evolve(fnn.data.TINY_SHAKESPEARE, mirrors=(...,))`` to download it from
    another place.
    """

    name: str
    file: str
    sha256: str
    mirrors: tuple[str, ...] = ()
    remote: str | None = None
    system_dirs: tuple[str, ...] = ()


TINY_SHAKESPEARE = TextSpec(
    name="tinyshakespeare",
    file="tinyshakespeare.txt",
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    mirrors=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/",),
    remote="input.txt",
)
"""Tiny Shakespeare, as distributed with karpathy/char-rnn
(``data/tinyshakespeare/input.txt``): 1,115,394 ASCII characters, 65 of them distinct."""

_TEXTS = {spec.name: spec for spec in (TINY_SHAKESPEARE,)}

TEXTS: Mapping[str, TextSpec] = MappingProxyType(_TEXTS)
"""The known texts by name (a read-only view): what :func:`load_text` finds by name,
verified by its SHA-256."""
"""The known texts, by name."""


def _chars(instance: Any, attribute: Any, chars: Any) -> None:
    if not isinstance(chars, str):
        raise TypeError(f"Text.chars must be a str, got {type(chars).__name__}")
    if not chars or list(chars) != sorted(set(chars)):
        raise ValueError(
            f"Text.chars must hold distinct characters in sorted order (the vocabulary), "
            f"got {chars[:80]!r}"
        )


def _id_array(ids: Any) -> Array:
    return readonly(np.asarray(ids))


@attrs.frozen(eq=False)
class Text:
    """A text encoded as ids: its vocabulary, the ids, and the file it was read from.

    Attributes:
        chars: the vocabulary: the text's distinct characters, sorted by code point;
            id ``i`` stands for ``chars[i]``.
        ids: the whole text encoded, int32, ``(len(text),)``, read-only; every id is in
            ``[0, vocab_size)``.
        name: the known text's name (``"tinyshakespeare"``), or the file's name without
            its suffix.
        path: the file read.
        sha256: the SHA-256 (hex) of the file's bytes.

    >>> import numpy as np
    >>> from pathlib import Path
    >>> text = Text("ab", np.array([0, 1, 1], np.int32), "ab", Path("ab.txt"), "0" * 64)
    >>> text.vocab_size, text.encode("ba").tolist(), text.decode([1, 0, 0])
    (2, [1, 0], 'baa')
    """

    chars: str = attrs.field(validator=_chars)
    ids: Array = attrs.field(converter=_id_array)
    name: str
    path: Path = attrs.field(converter=Path)
    sha256: str

    @ids.validator
    def _check_ids(self, attribute: Any, ids: Array) -> None:
        if ids.dtype != np.int32 or ids.ndim != 1:
            raise TypeError(f"Text.ids must be a 1-d int32 array, got {ids.dtype} {ids.shape}")
        _in_vocabulary(ids, self.vocab_size, "Text.ids")

    @property
    def vocab_size(self) -> int:
        """The number of distinct characters: ids are in ``[0, vocab_size)``."""
        return len(self.chars)

    def encode(self, string: str) -> Array:
        """The ids of ``string``'s characters: int32, ``(len(string),)``.

        Raises:
            TypeError: ``string`` is not a str.
            ValueError: a character that is not in the vocabulary (the message names the
                first one and its position).
        """
        if not isinstance(string, str):
            raise TypeError(f"encode needs a str, got {type(string).__name__}")
        return _encode(self.chars, string, self.name)

    def decode(self, ids: ArrayLike) -> str:
        """The text of ``ids``, a 1-d sequence of integer ids in ``[0, vocab_size)``.

        Raises:
            TypeError: ``ids`` are not integers (or not a sequence of them).
            ValueError: ``ids`` are not 1-d, or an id is outside the vocabulary (the
                message names the first one and its position).
        """
        array = np.asarray(ids)
        if array.ndim == 0 or (array.size and array.dtype.kind not in "iu"):
            raise TypeError(
                "decode needs a 1-d sequence of integer ids, got "
                f"{type(ids).__name__} of dtype {array.dtype} and shape {array.shape}"
            )
        if array.ndim != 1:
            raise ValueError(f"decode needs a 1-d sequence of ids, got shape {array.shape}")
        if array.size == 0:
            return ""
        _in_vocabulary(array, self.vocab_size, "decode: the ids")
        codes: Array = _codes(self.chars)[array]
        return codes.tobytes().decode("utf-32-le", "surrogatepass")


def _encode(chars: str, string: str, name: str) -> Array:
    """The ids of ``string`` in the sorted vocabulary ``chars`` (a binary search per
    character), int32; an error names the first character not in ``chars``."""
    codes = _codes(string)
    vocabulary = _codes(chars)
    ids = np.searchsorted(vocabulary, codes)
    unknown = vocabulary[np.minimum(ids, len(vocabulary) - 1)] != codes
    if unknown.any():
        i = int(np.argmax(unknown))
        raise ValueError(
            f"encode: the character {string[i]!r} (U+{ord(string[i]):04X}) at position {i} "
            f"is not in the vocabulary of {name!r} ({len(chars)} characters: {chars[:80]!r})"
        )
    out: Array = ids.astype(np.int32)
    return out


def _codes(string: str) -> Array:
    """The code point of each character of ``string``, uint32."""
    return np.frombuffer(string.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _in_vocabulary(ids: Array, size: int, what: str) -> None:
    """Raise naming the first id of ``ids`` outside ``[0, size)``."""
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= size):
        i = int(np.argmax((ids < 0) | (ids >= size)))
        raise ValueError(
            f"{what} must be in [0, {size}) (the vocabulary), got {int(ids[i])} at position {i}"
        )


def load_text(
    source: PathArg | TextSpec,
    *,
    data_dir: PathArg | None = None,
    cache_dir: PathArg | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
    max_bytes: int = MAX_TEXT_BYTES,
) -> Text:
    """Load a UTF-8 text and encode it by its own character vocabulary.

    ``source`` is a file's path, or a known text: its name (``"tinyshakespeare"``) or its
    :class:`TextSpec`. A str that is a known name means the known text; any other str,
    and any ``os.PathLike``, is a path (pass ``Path("tinyshakespeare")`` for a file of
    that name).

    A known text's file (``spec.file``, e.g. ``tinyshakespeare.txt``) is looked for, in
    order, in ``data_dir/<name>/``, ``data_dir``, ``$FNN_DATA/<name>/``, ``$FNN_DATA``,
    the cache ``cache_dir/<name>/`` (``cache_dir`` defaults to ``$XDG_CACHE_HOME/fnn``,
    else ``~/.cache/fnn``) and the spec's system directories: the same search as
    :func:`load_dataset`'s. The first file found is used, if its SHA-256 is the spec's
    (else an error: it is never skipped). When none is found and ``download`` is true,
    it is downloaded from the mirrors into the cache, checked, and only then moved into
    place. A path is read as it is, with no checksum to match (``Text.sha256`` records
    the one it has).

    The vocabulary is the sorted distinct characters of the text (nanoGPT's
    ``prepare.py``); the text is the file's characters exactly (no newline translation),
    without a leading UTF-8 byte order mark.

    Args:
        source: a path, a known text's name, or a :class:`TextSpec`.
        data_dir: a directory to look in first, for a known text.
        cache_dir: the per-user cache root, for a known text.
        download: for a known text found nowhere, download it into the cache.
        mirrors: base URLs to download from, in order, instead of the spec's.
        timeout: seconds to wait on a silent connection before giving up on a mirror.
        max_bytes: the largest file read (default 64 MiB): checked on the file's size
            before it is read, and on a download as it streams.

    Returns:
        A :class:`Text`: ``chars`` (the vocabulary), ``ids`` (int32 ``(n,)`` for a text
        of ``n`` characters, read-only), ``name``, ``path`` and ``sha256``.

    Raises:
        FileNotFoundError: no file at the path, or a known text found nowhere and not
            downloaded (the message lists every place looked at, each mirror's error,
            and how to get the file).
        DataError: (a ValueError) the file is not a regular file (a directory, a FIFO,
            a device), is larger than ``max_bytes``, fails a known text's checksum, is not
            UTF-8 (the message gives the byte offset), is empty, or holds fewer than 2
            distinct characters.
        ValueError: a bad argument, or ``data_dir``, ``cache_dir`` or ``mirrors`` given
            with a path (they are for known texts).
        TypeError: an argument of the wrong type.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "hello.txt")
    >>> with open(path, "w", encoding="utf-8") as f:
    ...     _ = f.write("hello, world\\n")
    >>> text = load_text(path)
    >>> text.name, text.chars, text.vocab_size, text.ids.shape
    ('hello', '\\n ,dehlorw', 10, (13,))
    >>> text.ids[:5].tolist(), text.decode(text.ids[:5])
    ([5, 4, 6, 6, 7], 'hello')
    """
    limit = check_max_bytes(max_bytes)
    if isinstance(source, str) and source in _TEXTS:
        source = _TEXTS[source]
    if isinstance(source, TextSpec):
        return _load_known(source, data_dir, cache_dir, download, mirrors, timeout, limit)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"load_text needs a path or a known text's name ({', '.join(_TEXTS)}), got "
            f"{type(source).__name__}"
        )
    given = [n for n, v in (("data_dir", data_dir), ("cache_dir", cache_dir)) if v is not None]
    given += ["mirrors"] if mirrors is not None else []
    if given:
        raise ValueError(
            f"{' and '.join(given)} are for a known text's name ({', '.join(_TEXTS)}); "
            f"load_text({os.fspath(source)!r}) reads that file"
        )
    path = Path(source)
    return _load(path.stem, path, limit, None)


def _load_known(
    spec: TextSpec,
    data_dir: PathArg | None,
    cache_dir: PathArg | None,
    allow_download: bool,
    mirrors: Sequence[str] | None,
    timeout: Any,
    limit: int,
) -> Text:
    mirror_list, seconds = check_options(
        spec.name, data_dir, spec.mirrors if mirrors is None else mirrors, allow_download, timeout
    )
    cache = cache_root(cache_dir) / spec.name
    found, reports = search(locations(spec.name, data_dir, cache, spec.system_dirs), [spec.file])
    if found is not None:
        return _load(spec.name, found[1][0], limit, spec.sha256)
    failures: list[str] = []
    if allow_download:
        target = cache / spec.file
        failures = download(
            spec.remote or spec.file, spec.sha256, target, mirror_list, seconds, limit,
            ", the max_bytes given; pass a larger max_bytes if the file is genuine",
        )  # fmt: skip
        if not failures:
            return _load(spec.name, target, limit, spec.sha256)
    hints = [
        f"put {spec.file} in a directory and pass data_dir=... or set FNN_DATA to it (or "
        f"to its parent, with the file in {spec.name}/), or",
        f"pass the file's path: load_text('path/to/{spec.file}'), or",
        "call again with download=True where a mirror is reachable: "
        + ", ".join(mirror_list or ("(none known)",)),
    ]
    raise FileNotFoundError(
        not_found_message(spec.name, spec.file, reports, allow_download, failures, hints)
    )


def _load(name: str, path: Path, limit: int, sha256: str | None) -> Text:
    """Read, check (against ``sha256`` when given) and encode the text at ``path``."""
    data = _read(path, limit)
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise DataError(
            f"{path}: checksum mismatch for {name}: the SHA-256 of its bytes is {digest}, "
            f"expected {sha256}; the file is damaged or another file: replace it with a "
            "fresh copy"
        )
    string = _decode(data, path)
    if not string:
        raise DataError(f"{path}: the text is empty; expected at least {_MIN_CHARS} characters")
    chars = "".join(sorted(set(string)))
    if len(chars) < _MIN_CHARS:
        raise DataError(
            f"{path}: the text holds {len(chars)} distinct character ({chars!r}); expected at "
            f"least {_MIN_CHARS}: with one, there is nothing to predict"
        )
    return Text(chars, _encode(chars, string, name), name, path, digest)


def _read(path: Path, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, refused before reading if more than
    ``limit``."""
    try:
        file = open_regular(path, DataError)
    except FileNotFoundError:
        raise FileNotFoundError(f"text file {path} does not exist") from None
    with file:
        size = os.fstat(file.fileno()).st_size
        if size > limit:
            raise DataError(
                f"{path}: {size} bytes, more than max_bytes={limit}; pass a larger max_bytes "
                "if the file is genuine"
            )
        return file.read()  # at most the size at open: open_regular reads no further


def _decode(data: bytes, path: Path) -> str:
    """``data`` decoded as UTF-8 without a leading byte order mark."""
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return codecs.decode(memoryview(data)[start:], "utf-8")
    except UnicodeDecodeError as e:
        offset = start + e.start
        raise DataError(
            f"{path}: not UTF-8 text: byte 0x{data[offset]:02x} at byte offset {offset} "
            f"({e.reason}); save the file as UTF-8"
        ) from None


def _windows(ids: Any, context: Any, what: str) -> tuple[Array, int]:
    """``ids`` and ``context`` checked: ids long enough for one window of ``context``."""
    ids = _checks.int_vector(ids, f"{what}: ids")
    size = _checks.positive_int(context, "context")
    if len(ids) < size + 1:
        raise ValueError(
            f"{what}: a window of context {size} needs at least {size + 1} ids (context + 1), "
            f"got {len(ids)}"
        )
    return ids, size


def split_text(ids: Array, fraction: float = 0.9) -> tuple[Array, Array]:
    """Split ids in order: the first ``int(n * fraction)`` to train on, the rest to validate.

    The split of nanoGPT's ``prepare.py`` (``data[:int(n * 0.9)]``, ``data[int(n *
    0.9):]``): no shuffling, so no window of one part overlaps the other.

    Args:
        ids: a 1-d integer array ``(n,)``, e.g. ``Text.ids``.
        fraction: the training share, ``0 < fraction < 1``.

    Returns:
        ``(train_ids, val_ids)``: views of ``ids`` (no copy) of shapes ``(k,)`` and
        ``(n - k,)``, ``k = int(n * fraction)``.

    Raises:
        TypeError: ``ids`` is not an integer array, or ``fraction`` not a number.
        ValueError: ``ids`` is not 1-d, ``fraction`` not strictly between 0 and 1, or a
            part would be empty.

    >>> import numpy as np
    >>> train, val = split_text(np.arange(10))
    >>> train.tolist(), val.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7, 8], [9])
    """
    ids = _checks.int_vector(ids, "split_text: ids")
    share = _checks.real(fraction, "fraction")
    if not 0.0 < share < 1.0:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    n = len(ids)
    k = int(n * share)
    if not 0 < k < n:
        raise ValueError(
            f"split_text: a fraction of {fraction} of {n} ids leaves {k} to train and {n - k} "
            "to validate; both parts need at least one id"
        )
    return ids[:k], ids[k:]


def random_windows(
    key: _random.Key, ids: Array, context: int, batch_size: int
) -> tuple[Array, Array]:
    """A batch of windows of ``context + 1`` consecutive ids, at offsets drawn from ``key``.

    The offsets are ``batch_size`` draws, uniform over ``[0, n - context - 1]`` (every
    window that fits), from ``fnn.random.generator(key)``: the same key gives the same
    windows, bit for bit. Derive a key per step (``fnn.random.fold_in(key, step)``) for
    new windows each step. Window ``b`` is ``ids[o_b : o_b + context + 1]``, gathered for
    the whole batch at once.

    Args:
        key: an :class:`fnn.random.Key`.
        ids: a 1-d integer array ``(n,)`` with ``n >= context + 1``, e.g. the training
            part of :func:`split_text`.
        context: the window's length (the model's context), an int >= 1.
        batch_size: the number of windows, an int >= 1.

    Returns:
        ``(x, y)``, each ``(batch_size, context)`` of ``ids``' dtype, read-only: the
        inputs ``x[b] = window_b[:-1]`` and the targets ``y[b] = window_b[1:]`` (the
        next id at each position). They are views of one new array.

    Raises:
        TypeError: ``key`` is not a key, ``ids`` not an integer array, ``context`` or
            ``batch_size`` not an int.
        ValueError: ``ids`` not 1-d or shorter than ``context + 1``, ``context`` or
            ``batch_size`` below 1.

    >>> import fnn, numpy as np
    >>> x, y = random_windows(fnn.random.key(0), np.arange(100), context=4, batch_size=3)
    >>> x.shape, y.shape, bool((y == x + 1).all())
    ((3, 4), (3, 4), True)
    """
    ids, size = _windows(ids, context, "random_windows")
    batch = _checks.positive_int(batch_size, "batch_size")
    starts = _random.generator(key).integers(0, len(ids) - size, size=batch, dtype=np.int64)
    windows = ids[starts[:, None] + np.arange(size + 1)]
    return readonly(windows[:, :-1]), readonly(windows[:, 1:])


def fixed_windows(ids: Array, context: int) -> tuple[Array, Array]:
    """All of ``ids`` in consecutive windows, to measure a loss over a whole split.

    Window ``i`` is ``ids[i * context : i * context + context + 1]``, for every ``i``
    with ``i * context + context + 1 <= n``: ``m = (n - 1) // context`` windows. Each id
    but the first is a target exactly once, up to the last ``(n - 1) % context`` ids,
    which no window holds whole. Feed them in chunks, e.g. ``fnn.data.batches(None, x,
    y, 256, shuffle=False)``.

    Args:
        ids: a 1-d integer array ``(n,)`` with ``n >= context + 1``, e.g. the validation
            part of :func:`split_text`.
        context: the window's length (the model's context), an int >= 1.

    Returns:
        ``(x, y)``, each ``(m, context)`` of ``ids``' dtype, read-only: ``x`` holds
        ``ids[: m * context]`` and ``y`` holds ``ids[1 : m * context + 1]``, row by row
        (views of ``ids`` when it is contiguous; nothing is copied).

    Raises:
        TypeError: ``ids`` is not an integer array, or ``context`` not an int.
        ValueError: ``ids`` not 1-d or shorter than ``context + 1``, or ``context`` below 1.

    >>> import numpy as np
    >>> x, y = fixed_windows(np.arange(10), context=4)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2, 3], [4, 5, 6, 7]], [[1, 2, 3, 4], [5, 6, 7, 8]])
    """
    ids, size = _windows(ids, context, "fixed_windows")
    count = (len(ids) - 1) // size
    end = count * size
    return readonly(ids[:end].reshape(count, size)), readonly(ids[1 : end + 1].reshape(count, size))
