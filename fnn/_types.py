"""Type aliases shared across fnn (private; re-exported where public)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
"""A NumPy array of any dtype; fnn's float arrays are float32 unless stated."""

Shape = tuple[int, ...]
"""An array shape without the batch axis, as layers see it."""

DType = np.dtype[Any]
"""A NumPy dtype object."""
