"""Data: IDX files, the MNIST-family datasets, preprocessing, splits and batches.

``read_idx``/``write_idx`` read and write IDX files (raw or gzip); ``to_float``,
``flatten``, ``one_hot`` and ``split`` prepare arrays; ``batches`` iterates over
shuffled mini-batches driven by a key.
"""

from ._batches import batches as batches
from ._batches import num_batches as num_batches
from ._idx import read_idx as read_idx
from ._idx import write_idx as write_idx
from ._prep import flatten as flatten
from ._prep import one_hot as one_hot
from ._prep import split as split
from ._prep import to_float as to_float
