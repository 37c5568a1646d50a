"""Data: IDX files, the MNIST-family datasets, preprocessing, splits and batches.

``read_idx``/``write_idx`` read and write IDX files (raw or gzip).
"""

from ._idx import read_idx as read_idx
from ._idx import write_idx as write_idx
