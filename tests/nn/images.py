"""Images in PyTorch's layout (NCHW) and back, and a size given as an int or a pair."""

from __future__ import annotations

from typing import Any

import numpy as np


def nchw(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def nhwc(x: Any) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = np.asarray(x.detach().numpy()).transpose(0, 2, 3, 1)
    return out


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))
