"""MNIST and Fashion-MNIST: find the four IDX files, verify them, download if allowed.

The four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or gzipped) are looked
for, in order, in:

1. the ``data_dir`` argument (in ``data_dir/<name>/``, then in ``data_dir`` itself);
2. ``$FNN_DATA`` (in ``$FNN_DATA/<name>/``, then in ``$FNN_DATA`` itself);
3. the per-user cache ``cache_dir/<name>/``, where ``cache_dir`` defaults to
   ``$XDG_CACHE_HOME/fnn`` or ``~/.cache/fnn``;
4. the system locations: ``/usr/share/datasets/<name>`` (Debian's
   ``dataset-fashion-mnist`` package installs Fashion-MNIST there).

The first directory that holds all four files is used. Every file is verified by the
SHA-256 of its *decompressed* bytes, so any faithful copy, gzipped by anyone, passes;
a gz file whose own SHA-256 is the standard mirrors' also passes. A file that fails
is an error naming it with the expected and the actual checksum: it is never used.

When no directory holds the four files and ``download`` is true, the missing files are
downloaded from the mirrors into the cache directory: each is streamed to a temporary
file, its gz SHA-256 is checked, and only then is it moved into place atomically. A
mirror that is down or serves a bad file is skipped for the next one.

The search and the download are :mod:`fnn.data._fetch`'s, which :func:`load_text` shares.
"""

from __future__ import annotations

import math
import os
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np

from .._files import sha256 as _sha256
from .._types import Array
from ._errors import DataError
from ._fetch import (
    cache_root,
    check_options,
    download,
    find,
    locations,
    not_found_message,
    search,
)
from ._idx import read_idx_digest
from ._sources import DataInfo, register, source

MAX_DOWNLOAD_BYTES = 1 << 28
"""The largest file a download may bring: 256 MiB (the largest standard file is 26 MB)."""


@attrs.frozen
class FileSpec:
    """One file of a dataset and the checksums that identify it.

    Attributes:
        name: the standard file name without ``.gz``, e.g. ``"train-images-idx3-ubyte"``.
        sha256: the SHA-256 (hex) of the decompressed file.
        gz_sha256: the SHA-256 of the ``.gz`` file the mirrors serve, or ``None`` when
            unknown; a file can only be downloaded when it is known.
    """

    name: str
    sha256: str
    gz_sha256: str | None = None


@attrs.frozen
class DatasetSpec:
    """Everything the loader knows about one dataset: files, checksums, where to look.

    Attributes:
        name: the dataset's name, also the subdirectory looked for under ``$FNN_DATA``,
            ``data_dir`` and the cache (``"mnist"``, ``"fashion-mnist"``).
        train_images, train_labels, test_images, test_labels: the four files.
        mirrors: base URLs to download the ``.gz`` files from, tried in order.
        system_dirs: directories a system package installs the files into.
        install_hint: how to install the files system-wide, if there is a way.
        num_train, num_test: the number of examples in each split.
        image_shape: the shape of one image.
        num_classes: labels must be in ``[0, num_classes)``.
        classes: the name of each class, for reports and predictions.

    Use ``attrs.evolve(fnn.data.MNIST, ...)`` to describe another copy or a test set.
    """

    name: str
    train_images: FileSpec
    train_labels: FileSpec
    test_images: FileSpec
    test_labels: FileSpec
    mirrors: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()
    install_hint: str = ""
    num_train: int = 60_000
    num_test: int = 10_000
    image_shape: tuple[int, ...] = (28, 28)
    num_classes: int = 10
    classes: tuple[str, ...] = tuple(str(i) for i in range(10))

    @property
    def files(self) -> tuple[FileSpec, FileSpec, FileSpec, FileSpec]:
        """The four files: train images, train labels, test images, test labels."""
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


# The gz checksums are those of the standard mirrors (the project's DATA.md). The
# decompressed MNIST checksums are stated in public code, three independent sources
# that agree: github.com/EntroMorphic/sstt (Makefile), github.com/lunal-dev/kettle
# (src/kettle/training.py) and github.com/proste/evgena (evgena/utils/large_files.py).
# The decompressed Fashion-MNIST checksums are DATA.md's (Debian's copy and the
# mirrors' decompress to the same bytes); EntroMorphic/sstt lists the same values.
MNIST = DatasetSpec(
    name="mnist",
    train_images=FileSpec(
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    train_labels=FileSpec(
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    test_images=FileSpec(
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    test_labels=FileSpec(
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    system_dirs=("/usr/share/datasets/mnist",),
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    train_images=FileSpec(
        "train-images-idx3-ubyte",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    ),
    train_labels=FileSpec(
        "train-labels-idx1-ubyte",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    ),
    test_images=FileSpec(
        "t10k-images-idx3-ubyte",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    ),
    test_labels=FileSpec(
        "t10k-labels-idx1-ubyte",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    install_hint="apt-get install dataset-fashion-mnist (Debian, Ubuntu)",
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)


def readonly(x: Array) -> Array:
    """A read-only view of ``x`` (the caller's array keeps its flags)."""
    view: Array = x.view()
    view.flags.writeable = False
    return view


def _mapping(m: Mapping[str, str]) -> Mapping[str, str]:
    return types.MappingProxyType(dict(m))


def _names(classes: Sequence[str]) -> tuple[str, ...]:
    return tuple(classes)


@attrs.frozen(eq=False)
class Dataset:
    """A loaded dataset: read-only arrays plus where they came from, for run records.

    Attributes:
        name: the dataset's name (``"mnist"``, ``"fashion-mnist"``; for
            :func:`~fnn.data.load_directory`, the directory's name).
        x_train: images ``(num_train, *image_shape)``: uint8 with values 0-255 (the
            MNIST family: ``(num_train, 28, 28)``), or, from a directory, float32 or
            float64 in [0, 1] and any ``(h, w)`` or ``(h, w, c)`` image shape.
        y_train: int64 labels, ``(num_train,)``, values in ``[0, num_classes)``.
        x_test: images ``(num_test, *image_shape)``, as ``x_train``.
        y_test: int64 labels, ``(num_test,)``.
        directory: the directory the files were read from.
        files: the paths read (train images, train labels, test images, test labels;
            for a directory, every file read, ``classes.txt`` included).
        sha256: the SHA-256 (hex) of each file read: for the MNIST family, of its
            decompressed bytes, keyed by the standard file name without ``.gz``; for a
            directory, of the file as stored, keyed by its file name.
            ``dict(ds.sha256)`` is JSON-ready.
        num_classes: labels are in ``[0, num_classes)`` (default 10).
        classes: the name of each class, ``num_classes`` of them (default ``"0"`` to
            ``"9"``).
    """

    name: str
    x_train: Array = attrs.field(converter=readonly)
    y_train: Array = attrs.field(converter=readonly)
    x_test: Array = attrs.field(converter=readonly)
    y_test: Array = attrs.field(converter=readonly)
    directory: Path
    files: tuple[Path, ...]
    sha256: Mapping[str, str] = attrs.field(converter=_mapping)
    num_classes: int = 10
    classes: tuple[str, ...] = attrs.field(
        default=tuple(str(i) for i in range(10)), converter=_names
    )


def load_dataset(
    name: str | DatasetSpec,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> Dataset:
    """Load a registered dataset by name (:func:`register`), or a dataset of the MNIST
    family from its :class:`DatasetSpec`, verified against known checksums.

    Args:
        name: a registered name (``"mnist"``, ``"fashion-mnist"``; ``"fashion_mnist"``
            also works; the other arguments but ``data_dir`` and ``download`` are for
            the MNIST family), or a :class:`DatasetSpec` for another copy of an IDX
            dataset, e.g. small test files.
        data_dir: a directory to look in first (the files in it or in ``<name>/``).
        cache_dir: the per-user cache root; files are cached in ``cache_dir/<name>``.
            Default: ``$XDG_CACHE_HOME/fnn``, else ``~/.cache/fnn``.
        download: when no location has the files, download the missing ones from
            the mirrors into the cache. Needs each file's gz checksum in the spec.
        mirrors: base URLs to download from, in order, instead of the spec's.
        timeout: seconds to wait on a silent connection before giving up on a mirror.

    Returns:
        A :class:`Dataset` with read-only uint8 images ``(n, 28, 28)``, int64 labels,
        and the spec's ``num_classes`` and ``classes``.

    Raises:
        FileNotFoundError: the files are nowhere and could not be downloaded; the
            message lists every file and directory looked at, in order, each mirror's
            error, and how to get the files.
        DataError: (a ValueError) a file is not the expected one (a checksum mismatch,
            naming the file, the expected and the actual SHA-256), not a valid IDX
            file, not a regular file, or has the wrong shape or labels.
        ValueError: an unknown name or a bad argument.
        TypeError: an argument of the wrong type.
    """
    if not isinstance(name, DatasetSpec):
        registered = source(name)
        if registered.name not in _IDX_SPECS:  # a dataset of another kind: its own loader
            loaded: Dataset = registered.load(data_dir=data_dir, download=download)
            return loaded
        name = _IDX_SPECS[registered.name]
    spec = name
    mirror_list, seconds = check_options(
        spec.name, data_dir, spec.mirrors if mirrors is None else mirrors, download, timeout
    )
    cache = cache_root(cache_dir) / spec.name
    names = [f.name for f in spec.files]
    places = locations(spec.name, data_dir, cache, spec.system_dirs)
    found, reports = search(places, names, ("", ".gz"))
    if found is not None:
        return _load(spec, *found)

    failures: list[str] = []
    if download:
        failures = _download_missing(spec, cache, mirror_list, seconds)
        if not failures:
            paths, report = find(cache, names, ("", ".gz"))
            if paths is not None:
                return _load(spec, cache, paths)
            failures.append(f"{cache}: still incomplete after the download: {report}")
    raise FileNotFoundError(_not_found_message(spec, reports, mirror_list, download, failures))


def load_mnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> Dataset:
    """Load MNIST (handwritten digits); see :func:`load_dataset` for the arguments."""
    return load_dataset(
        MNIST,
        data_dir=data_dir,
        cache_dir=cache_dir,
        download=download,
        mirrors=mirrors,
        timeout=timeout,
    )


def load_fashion_mnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> Dataset:
    """Load Fashion-MNIST (Zalando's clothing images); see :func:`load_dataset`."""
    return load_dataset(
        FASHION_MNIST,
        data_dir=data_dir,
        cache_dir=cache_dir,
        download=download,
        mirrors=mirrors,
        timeout=timeout,
    )


def _load(spec: DatasetSpec, directory: Path, paths: list[Path]) -> Dataset:
    n_pixels = math.prod(spec.image_shape)
    sizes = (
        spec.num_train * n_pixels,
        spec.num_train,
        spec.num_test * n_pixels,
        spec.num_test,
    )
    arrays = []
    digests = {}
    for f, path, size in zip(spec.files, paths, sizes):
        array, digest = read_idx_digest(path, max_bytes=size)
        _verify(spec, f, path, digest)
        arrays.append(array)
        digests[f.name] = digest
    x_train, y_train, x_test, y_test = arrays
    _check_split(spec, paths[0], paths[1], x_train, y_train, spec.num_train)
    _check_split(spec, paths[2], paths[3], x_test, y_test, spec.num_test)
    return Dataset(
        name=spec.name,
        x_train=x_train,
        y_train=y_train.astype(np.int64),
        x_test=x_test,
        y_test=y_test.astype(np.int64),
        directory=directory,
        files=tuple(paths),
        sha256=digests,
        num_classes=spec.num_classes,
        classes=spec.classes,
    )


def _verify(spec: DatasetSpec, f: FileSpec, path: Path, digest: str) -> None:
    if digest == f.sha256:
        return
    if f.gz_sha256 is not None and _file_sha256(path) == f.gz_sha256:
        return
    other = [
        f"{s.name}'s {g.name}"
        for s in _IDX_SPECS.values()
        for g in s.files
        if g.sha256 == digest and s.name != spec.name
    ]
    fix = (
        f"it is {other[0]}: point {spec.name} at its own files"
        if other
        else "the file is damaged or another file: replace it with a fresh copy"
    )
    raise DataError(
        f"{path}: checksum mismatch for {spec.name} {f.name}: the SHA-256 of its "
        f"decompressed bytes is {digest}, expected {f.sha256}; {fix}"
    )


def _file_sha256(path: Path) -> str:
    return _sha256(path, DataError)


def _check_split(spec: DatasetSpec, x_path: Path, y_path: Path, x: Array, y: Array, n: int) -> None:
    want = (n, *spec.image_shape)
    if x.dtype != np.uint8 or x.shape != want:
        raise DataError(f"{x_path}: expected uint8 images of shape {want}, got {x.dtype} {x.shape}")
    if y.dtype != np.uint8 or y.shape != (n,):
        raise DataError(f"{y_path}: expected uint8 labels of shape ({n},), got {y.dtype} {y.shape}")
    if n and int(y.max()) >= spec.num_classes:
        raise DataError(f"{y_path}: labels must be in [0, {spec.num_classes}), got {int(y.max())}")


def _download_missing(
    spec: DatasetSpec, cache: Path, mirrors: tuple[str, ...], timeout: float
) -> list[str]:
    """Download each file missing from ``cache``; return why any could not be had."""
    todo = [
        f
        for f in spec.files
        if not (cache / f.name).is_file() and not (cache / f"{f.name}.gz").is_file()
    ]
    if not todo:
        return []
    unknown = [f.name for f in todo if f.gz_sha256 is None]
    if unknown:
        return [f"no gz checksum to verify a download of {', '.join(unknown)}"]
    for f in todo:
        assert f.gz_sha256 is not None
        gz = f"{f.name}.gz"
        errors = download(gz, f.gz_sha256, cache / gz, mirrors, timeout, MAX_DOWNLOAD_BYTES)
        if errors:
            return [f"{gz}:"] + [f"  {e}" for e in errors]
    return []


def _not_found_message(
    spec: DatasetSpec,
    reports: list[str],
    mirrors: tuple[str, ...],
    download: bool,
    failures: list[str],
) -> str:
    names = ", ".join(f"{f.name}[.gz]" for f in spec.files)
    hints = [f"{spec.install_hint}, or"] if spec.install_hint else []
    hints += [
        "put the four files (gzipped or not) in a directory and pass data_dir=... or "
        f"set FNN_DATA to it (or to its parent, with the files in {spec.name}/), or",
        "call again with download=True where the mirrors are reachable: "
        + ", ".join(mirrors or ("(none known)",)),
    ]
    return not_found_message(spec.name, names, reports, download, failures, hints)


_IDX_SPECS: dict[str, DatasetSpec] = {}
"""The registered datasets of the MNIST family, by name."""


def _register_idx(spec: DatasetSpec) -> None:
    """Register an IDX dataset of the MNIST family under its spec's name."""

    def load(*, data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> Dataset:
        return load_dataset(spec, data_dir=data_dir, download=download)

    load.__qualname__ = f"load_{spec.name.replace('-', '_')}"
    _IDX_SPECS[spec.name] = spec
    register(spec.name, info=DataInfo(spec.image_shape, spec.classes))(load)


_register_idx(MNIST)
_register_idx(FASHION_MNIST)
