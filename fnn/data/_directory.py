"""A user's own dataset from a directory (private; see :func:`load_directory`).

A directory holds one of three layouts:

* the four IDX files of the MNIST family, each raw or gzipped: ``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``;
* four ``.npy`` files: ``x_train.npy``, ``y_train.npy``, ``x_test.npy``, ``y_test.npy``;
* one ``data.npz`` (``np.savez`` or ``np.savez_compressed``) holding exactly the arrays
  ``x_train``, ``y_train``, ``x_test``, ``y_test``;

and optionally ``classes.txt``, one class name per line.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import attrs
import numpy as np

from .._files import kind, open_regular
from .._files import sha256 as _sha256
from .._types import Array
from ._datasets import Dataset
from ._errors import DataError
from ._idx import DEFAULT_MAX_BYTES, check_max_bytes, read_idx
from ._npy import Header, Stream, read_data, read_header, read_npy
from ._prep import to_float

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The IDX layout's files (train images, train labels, test images, test labels), each
raw or with ``.gz``."""

NPY_FILES = ("x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy")
"""The ``.npy`` layout's files."""

NPZ_FILE = "data.npz"
"""The ``.npz`` layout's one file; it holds the arrays named as :data:`NPY_FILES`."""

CLASSES_FILE = "classes.txt"
"""The optional file of class names, one per line (UTF-8)."""

MAX_CLASSES = 100_000
"""The most classes a directory's labels or ``classes.txt`` may give."""

MAX_CLASSES_BYTES = 1 << 22
"""The largest ``classes.txt`` read: 4 MiB."""

_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
_NPZ_MEMBERS = tuple(f"{a}.npy" for a in _ARRAYS)
_HEADER_ROOM = 1 << 20
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)


@attrs.frozen
class _Layout:
    """One way a directory can hold a dataset: its name and the files it reads."""

    name: str
    files: tuple[str, ...]


def load_directory(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> Dataset:
    """Load a dataset of your own from a directory, checking every file and array.

    The directory holds one of three layouts: the four IDX files of the MNIST family
    (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or with ``.gz``; a
    raw file is read before a gzipped one of the same name), or ``x_train.npy``,
    ``y_train.npy``, ``x_test.npy``, ``y_test.npy``, or one ``data.npz`` holding exactly
    those four arrays (read without pickle). An optional ``classes.txt`` names the
    classes, one per line.

    Images are ``(n, h, w)`` or ``(n, h, w, c)`` of any positive size, the same per-image
    shape in train and test, either uint8 (0-255) or float32/float64 in [0, 1]. Labels
    are ``(n,)`` integers in ``[0, num_classes)``, as many as the images.

    Args:
        path: the directory.
        max_bytes: the largest array data a file (or ``data.npz`` member) may declare;
            a header that declares more is refused before anything is allocated.

    Returns:
        A :class:`Dataset` named after the directory, with its read-only arrays (labels
        as int64), ``files`` (every file read), ``sha256`` (the SHA-256 of each file as
        stored, keyed by file name), ``num_classes`` (the number of lines of
        ``classes.txt``, else the largest label + 1) and ``classes`` (the lines of
        ``classes.txt``, else ``"0"``, ``"1"``, ...).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: (a ValueError) ``path`` is not a directory; no layout's files are
            there (the message lists what was looked for), only some of them, or files
            of two layouts; a file that is not a regular file, not valid, or declares
            more than ``max_bytes``; images that are empty (no training example), of
            another dtype or of different shapes in train and test, or float pixels that
            are not finite or outside [0, 1]; labels that are not integers, negative, not
            one per image, or not below the number of classes; a ``classes.txt`` whose
            names are empty, repeated, hold control characters, or whose count is not
            the number of classes; more than :data:`MAX_CLASSES` classes.
        TypeError, ValueError: ``max_bytes`` is not a non-negative int.
    """
    limit = check_max_bytes(max_bytes)
    directory = _directory(path)
    layout = _layout(directory)
    files = [directory / f for f in layout.files]
    for f in files:
        _check_file_size(f, limit * len(_ARRAYS) if layout.name == NPZ_FILE else limit)
    if layout.name == NPZ_FILE:
        arrays = _read_npz(files[0], limit)
        names = [f"{files[0]}: {a}" for a in _ARRAYS]
    elif layout.name == "IDX":
        arrays = [read_idx(f, max_bytes=limit) for f in files]
        names = [str(f) for f in files]
    else:
        arrays = [read_npy(str(f), limit) for f in files]
        names = [str(f) for f in files]
    x_train, y_train, x_test, y_test = arrays
    _check_images(names[0], x_train, names[2], x_test)
    y_train = _check_labels(names[1], y_train, len(x_train), names[0])
    y_test = _check_labels(names[3], y_test, len(x_test), names[2])
    classes_path = directory / CLASSES_FILE
    classes = _read_classes(classes_path) if os.path.lexists(classes_path) else None
    if classes is not None:
        files.append(classes_path)
    num_classes, classes = _classes(directory, y_train, y_test, classes)
    return Dataset(
        name=Path(os.path.abspath(directory)).name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        directory=directory,
        files=tuple(files),
        sha256={f.name: _sha256(f, DataError) for f in files},
        num_classes=num_classes,
        classes=classes,
    )


def _directory(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"load_directory needs a directory path, got {type(path).__name__}")
    directory = Path(path)
    try:
        mode = os.stat(directory).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{directory}: no such directory") from None
    if not stat.S_ISDIR(mode):
        raise DataError(f"{directory} is {kind(mode)}; expected a directory of data files")
    return directory


def _check_file_size(path: Path, limit: int) -> None:
    """Refuse a file larger than ``limit`` bytes of data and some room for headers and
    compression: nothing reads (or hashes) more of it."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return  # the reader names the problem
    if size > limit + _HEADER_ROOM:
        raise DataError(
            f"{path}: {size} bytes, more than max_bytes={limit} of data allows; pass a "
            "larger max_bytes if the file is genuine"
        )


def _layout(directory: Path) -> _Layout:
    """The one layout whose files ``directory`` holds.

    Raises:
        DataError: no layout, two, or an incomplete one.
    """
    idx = tuple(
        next((n for n in (f, f"{f}.gz") if os.path.lexists(directory / n)), f) for f in IDX_FILES
    )
    layouts = (_Layout("IDX", idx), _Layout(".npy", NPY_FILES), _Layout(NPZ_FILE, (NPZ_FILE,)))
    present = {
        layout.name: [f for f in layout.files if os.path.lexists(directory / f)]
        for layout in layouts
    }
    used = [layout for layout in layouts if present[layout.name]]
    if not used:
        raise DataError(
            f"{directory}: no dataset found; looked for the IDX files "
            f"{', '.join(f'{f}[.gz]' for f in IDX_FILES)}, or the .npy files "
            f"{', '.join(NPY_FILES)}, or {NPZ_FILE}"
        )
    if len(used) > 1:
        found = "; ".join(f"{layout.name}: {', '.join(present[layout.name])}" for layout in used)
        raise DataError(
            f"{directory}: a mix of formats ({found}); keep the files of one format only"
        )
    layout = used[0]
    missing = [f for f in layout.files if f not in present[layout.name]]
    if missing:
        raise DataError(
            f"{directory}: found {', '.join(present[layout.name])} but not "
            f"{', '.join(f'{m}[.gz]' if layout.name == 'IDX' else m for m in missing)}; "
            f"the {layout.name} format needs all of {', '.join(layout.files)}"
        )
    return layout


def _read_npz(path: Path, limit: int) -> list[Array]:
    """The four arrays of ``data.npz``: every member's header is checked before any data
    is read."""
    name = str(path)
    with open_regular(path, DataError) as file:
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as e:
            raise DataError(f"{name}: not a valid .npz (ZIP) archive: {e}") from None
        with archive:
            members = _npz_members(archive, name)
            try:
                headers = [_member_header(archive, members[m], name, limit) for m in _NPZ_MEMBERS]
                arrays = []
                for member, header in zip(_NPZ_MEMBERS, headers):
                    with archive.open(members[member]) as stream:
                        stream.read(header.header_size)
                        arrays.append(read_data(_member(stream), header, f"{name}: {member}"))
            except _ZIP_ERRORS as e:
                raise DataError(f"{name}: a damaged .npz member: {e}") from None
    return arrays


def _member(stream: Any) -> Stream:
    """A ZIP member as the ``.npy`` reader reads it (a ``ZipExtFile``, a buffered stream
    with ``readinto``, which typeshed types as ``IO[bytes]``)."""
    return cast(Stream, stream)


def _npz_members(archive: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.filename in members:
            raise DataError(f"{name}: holds the member {info.filename!r} twice")
        members[info.filename] = info
    if set(members) != set(_NPZ_MEMBERS):
        missing = sorted(set(_NPZ_MEMBERS) - set(members))
        extra = sorted(set(members) - set(_NPZ_MEMBERS))
        raise DataError(
            f"{name}: expected exactly the arrays {', '.join(_ARRAYS)}; missing {missing}, "
            f"unexpected {[m[:80] for m in extra[:5]]}"
        )
    for info in members.values():
        if info.flag_bits & 0x1:
            raise DataError(f"{name}: the member {info.filename} is encrypted")
    return members


def _member_header(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limit: int
) -> Header:
    if info.file_size > limit + _HEADER_ROOM:
        raise DataError(
            f"{name}: the member {info.filename} declares {info.file_size} bytes, more than "
            f"max_bytes={limit}; pass a larger max_bytes if the file is genuine"
        )
    with archive.open(info) as stream:
        return read_header(_member(stream), f"{name}: {info.filename}", limit, info.file_size)


def _check_images(train_name: str, x_train: Array, test_name: str, x_test: Array) -> None:
    for name, x in ((train_name, x_train), (test_name, x_test)):
        if x.ndim not in (3, 4) or 0 in x.shape[1:]:
            raise DataError(
                f"{name}: expected images (n, h, w) or (n, h, w, c) of positive sizes, got "
                f"shape {x.shape}"
            )
        check_pixels(name, x)
    for name, x, part in ((train_name, x_train, "training"), (test_name, x_test, "test")):
        if len(x) == 0:
            raise DataError(f"{name}: the {part} set is empty; it needs at least one image")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"train and test images differ in shape: {x_train.shape[1:]} in {train_name}, "
            f"{x_test.shape[1:]} in {test_name}"
        )


def as_float_images(images: Array, name: str = "images") -> Array:
    """``images`` as float32 in [0, 1] by the one pixel rule (:func:`check_pixels`): uint8
    read as ``x / 255``, float32/float64 as they are.

    Raises:
        DataError: pixels of another dtype, or float pixels outside [0, 1] (``name``
            names them).

    >>> import numpy as np
    >>> as_float_images(np.array([[0, 255]], np.uint8)).tolist()
    [[0.0, 1.0]]
    """
    check_pixels(name, images)
    return to_float(images) if images.dtype == np.uint8 else images.astype(np.float32)


def check_pixels(name: str, images: Array) -> None:
    """Refuse pixels fnn does not read as images: the one rule of training
    (:func:`load_directory`) and prediction (:func:`fnn.data.read_images`).

    Pixels are uint8, read as ``x / 255``, or float32/float64 already in [0, 1], read as
    they are. The dtype alone decides how values are read, never the values of the other
    images in the file; so a 0/1 mask of uint8 is dark (``1/255``) wherever it comes.

    Args:
        name: the file (or member) named in errors.
        images: an array of any shape.

    Raises:
        DataError: another dtype (uint16, int64, bool, float16, ...); float pixels that
            are NaN or infinite, or outside [0, 1] (the message gives the range found).
    """
    if images.dtype != np.uint8 and images.dtype not in _FLOATS:
        raise DataError(
            f"{name}: expected uint8 images (0-255) or float32/float64 images in [0, 1], "
            f"got {images.dtype}"
        )
    if images.dtype in _FLOATS and images.size:
        low, high = float(images.min()), float(images.max())  # NaN propagates; no temporaries
        if not (np.isfinite(low) and np.isfinite(high)):
            raise DataError(f"{name}: float pixels must be finite, found NaN or infinity")
        if low < 0 or high > 1:
            raise DataError(
                f"{name}: float pixels must be in [0, 1], found values in [{low}, {high}]; "
                "scale them into [0, 1], or store uint8 0-255"
            )


def _check_labels(name: str, y: Array, n: int, images: str) -> Array:
    """``y`` as int64 labels, one per image."""
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{name}: expected integer labels of shape (n,), got {y.dtype} {y.shape}")
    if len(y) != n:
        raise DataError(f"{name}: {len(y)} labels for the {n} images of {images}")
    if len(y) and int(y.min()) < 0:
        raise DataError(f"{name}: labels must be >= 0, found {int(y.min())}")
    top = int(y.max()) if len(y) else 0
    if top >= MAX_CLASSES:  # checked before the cast: a uint64 label could wrap negative
        raise DataError(
            f"{name}: a label of {top} means {top + 1} classes, more than the {MAX_CLASSES} allowed"
        )
    return y if y.dtype == np.int64 else y.astype(np.int64)


def _read_classes(path: Path) -> tuple[str, ...]:
    """The class names in ``classes.txt``: one per line, printable, distinct."""
    with open_regular(path, DataError) as file:
        data = file.read(MAX_CLASSES_BYTES + 1)
    if len(data) > MAX_CLASSES_BYTES:
        raise DataError(f"{path}: more than {MAX_CLASSES_BYTES} bytes; expected one name per line")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text: {e}") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    names = tuple(line[:-1] if line.endswith("\r") else line for line in lines)
    for i, class_name in enumerate(names, 1):
        if not class_name or not class_name.isprintable():
            raise DataError(
                f"{path}: line {i} holds {class_name!r}; a class name must be non-empty and "
                "printable (no control characters)"
            )
    if len(set(names)) != len(names):
        twice = sorted({c for c in names if names.count(c) > 1})[:5]
        raise DataError(f"{path}: class names appear twice: {twice}")
    return names


def _classes(
    directory: Path, y_train: Array, y_test: Array, names: Sequence[str] | None
) -> tuple[int, tuple[str, ...]]:
    """The number of classes and their names, from ``classes.txt`` or the labels (each
    below :data:`MAX_CLASSES`: checked with the labels)."""
    top = max(int(y.max()) for y in (y_train, y_test) if len(y))
    if names is None:
        return top + 1, tuple(str(i) for i in range(top + 1))
    if not 0 < len(names) <= MAX_CLASSES:
        raise DataError(
            f"{directory / CLASSES_FILE}: {len(names)} class names; expected 1 to {MAX_CLASSES}"
        )
    if top >= len(names):
        raise DataError(
            f"{directory / CLASSES_FILE}: names {len(names)} classes, but a label is {top}; "
            f"labels must be below the number of classes"
        )
    return len(names), tuple(names)
