"""Safe save and load of parameter trees and models: no pickle, atomic writes.

A file is a ZIP archive (readable by ``np.load``) of one ``.npy`` array per leaf plus
``fnn.json``, a JSON description of the tree's structure, each leaf's dtype and shape,
the format's name and version, user metadata and, for models, the layer spec. The format
is specified in FORMAT.md beside this file.

* :func:`save` / :func:`load` — any fnn tree; ``load(path, like=template)`` checks every
  node and leaf against the template; ``load(path)`` rebuilds only registered types
  (:data:`TYPES`), never importing a name found in a file.
* :func:`save_model` / :func:`load_model` — a model's spec, input shape, params and state.
* :func:`load_metadata` — the metadata saved with either, without reading the arrays;
  :func:`load_in_shape` — the input shape a model file's model takes, likewise;
  :func:`load_input_dtype` the dtype of its inputs (int64 token ids, or floats).

Errors: :class:`FormatError` (a ``ValueError``) for any file that is not a valid fnn
file, or not a regular file (a FIFO or a device is refused at once, never read);
``ValueError`` for a valid file that does not match the template; ``FileNotFoundError``
for a missing path (``IsADirectoryError`` for a directory); ``TypeError`` for arguments
of the wrong type.
"""

from ..tree import TYPES as TYPES
from ._api import LoadedModel as LoadedModel
from ._api import PathLike as PathLike
from ._api import load as load
from ._api import load_in_shape as load_in_shape
from ._api import load_input_dtype as load_input_dtype
from ._api import load_metadata as load_metadata
from ._api import load_model as load_model
from ._api import save as save
from ._api import save_model as save_model
from ._format import FORMAT as FORMAT
from ._format import VERSION as VERSION
from ._format import FormatError as FormatError

__all__ = [
    "FORMAT",
    "FormatError",
    "LoadedModel",
    "PathLike",
    "TYPES",
    "VERSION",
    "load",
    "load_in_shape",
    "load_input_dtype",
    "load_metadata",
    "load_model",
    "save",
    "save_model",
]
