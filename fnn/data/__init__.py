"""Data: IDX files, the MNIST-family datasets, preprocessing, splits and batches.

``read_idx``/``write_idx`` read and write IDX files (raw or gzip); ``load_mnist``,
``load_fashion_mnist`` and ``load_dataset`` find, verify (SHA-256) and, if allowed,
download the standard files; ``load_directory`` loads a dataset of your own from a
directory (the four IDX files, four ``.npy`` files or one ``data.npz``, and an optional
``classes.txt``), recording every file's SHA-256; a :class:`Dataset` carries the arrays,
their checksums, ``num_classes`` and the class names. ``read_images`` reads images to
predict on from a picture (Pillow), an IDX or a ``.npy`` file. ``to_float``,
``flatten``, ``one_hot`` and ``split`` prepare arrays; ``batches`` iterates over shuffled
mini-batches driven by a key; ``random_flip``, ``random_shift`` and ``augmentation`` are
keyed augmentations of images.

For character-level language models, ``load_text`` reads a UTF-8 file, or a known text
by name (``"tinyshakespeare"``: found as the datasets are, verified, downloaded if
allowed), into a :class:`Text` (the sorted distinct characters and the text as int32
ids); ``split_text`` splits the ids 90% / 10% in order; ``random_windows`` draws a batch
of ``(x, y)`` windows from a key and ``fixed_windows`` cuts a whole split in windows.

Every reader takes regular files only (a directory, a FIFO or a device such as
``/dev/zero`` is refused) and checks a file's header against a size limit (``max_bytes``,
1 GiB by default) before allocating anything. A file that cannot be used raises
:class:`DataError`, a ``ValueError`` naming the file, what was expected and what was found.
"""

from ._augment import Augment as Augment
from ._augment import augmentation as augmentation
from ._augment import random_flip as random_flip
from ._augment import random_shift as random_shift
from ._batches import batches as batches
from ._batches import num_batches as num_batches
from ._datasets import FASHION_MNIST as FASHION_MNIST
from ._datasets import MNIST as MNIST
from ._datasets import Dataset as Dataset
from ._datasets import DatasetSpec as DatasetSpec
from ._datasets import FileSpec as FileSpec
from ._datasets import load_dataset as load_dataset
from ._datasets import load_fashion_mnist as load_fashion_mnist
from ._datasets import load_mnist as load_mnist
from ._directory import as_float_images as as_float_images
from ._directory import load_directory as load_directory
from ._errors import DataError as DataError
from ._idx import read_idx as read_idx
from ._idx import write_idx as write_idx
from ._images import read_images as read_images
from ._prep import flatten as flatten
from ._prep import one_hot as one_hot
from ._prep import split as split
from ._prep import split_indices as split_indices
from ._prep import to_float as to_float
from ._sources import DATASETS as DATASETS
from ._sources import DataInfo as DataInfo
from ._sources import Source as Source
from ._sources import register as register
from ._sources import source as source
from ._text import TEXTS as TEXTS
from ._text import TINY_SHAKESPEARE as TINY_SHAKESPEARE
from ._text import Text as Text
from ._text import TextSpec as TextSpec
from ._text import fixed_windows as fixed_windows
from ._text import load_text as load_text
from ._text import random_windows as random_windows
from ._text import split_text as split_text

__all__ = [
    "Augment",
    "as_float_images",
    "DATASETS",
    "DataError",
    "DataInfo",
    "Dataset",
    "DatasetSpec",
    "FASHION_MNIST",
    "FileSpec",
    "MNIST",
    "Source",
    "TEXTS",
    "TINY_SHAKESPEARE",
    "Text",
    "TextSpec",
    "augmentation",
    "batches",
    "fixed_windows",
    "flatten",
    "load_dataset",
    "load_directory",
    "load_fashion_mnist",
    "load_mnist",
    "load_text",
    "num_batches",
    "one_hot",
    "random_flip",
    "random_shift",
    "random_windows",
    "read_idx",
    "read_images",
    "register",
    "source",
    "split",
    "split_indices",
    "split_text",
    "to_float",
    "write_idx",
]
