"""The names files written by earlier development versions of fnn 0.1.0 (before each
layer's records were named by its registration) gave the built-in layers' records.

Then a record's name in a file was ``fnn.nn.<ClassName>``; now it is the one its
layer's registration gives (``"dense.DenseParams"``, see :func:`fnn.nn.register`). The
old names stay readable, never written, so those files keep loading.
"""

from __future__ import annotations

from .. import tree as _tree
from ._conv import Conv2DParams
from ._dense import DenseParams
from ._norm import BatchNormParams, BatchNormState, LayerNormParams

for _cls in (DenseParams, Conv2DParams, BatchNormParams, BatchNormState, LayerNormParams):
    _tree.register_type(_cls, aliases=(f"fnn.nn.{_cls.__name__}",))
