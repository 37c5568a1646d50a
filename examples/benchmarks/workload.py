"""What every peer of the benchmark shares: the workload, the data, the epoch clock and
the memory gauge.

Each peer (``peer_fnn.py``, ``peer_torch.py``, ``peer_jax.py``, ``peer_numpy.py``) trains the model
``Workload.model`` names (``"mlp"``: the MLP of ``Workload.sizes``; ``"cnn"``: the CNN of
``Workload.channels``, ``dense_size`` and ``dropout``) on the same data, loaded here the
same way for all: the Fashion-MNIST files through ``fnn.data`` (verified by SHA-256),
images ``uint8 -> float32 / 255``, flattened to ``(n, 784)`` for the MLP and kept as
``(n, 28, 28)`` for the CNN (each peer adds the channel axis its layout wants, as a view),
labels int64; only the first ``Workload.train_size`` training images.
"""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

TRAIN_SIZE = 60_000
"""Fashion-MNIST's training examples (the floor needs the count without the data)."""

MODELS = ("mlp", "cnn")
"""The workloads, by the name ``--model`` takes."""

DEFAULT_TRAIN_SIZES = {"mlp": TRAIN_SIZE, "cnn": 10_000}
"""Training images per epoch unless ``--train-size`` says otherwise: the MLP takes all
60,000; the CNN the first 10,000 (the figures it is compared with were measured so)."""

IMAGE_SHAPE = (28, 28)
"""Height and width of the images (one channel)."""

EVAL_CHUNKS = {"mlp": 10_000, "cnn": 1_000}
"""Test images per forward pass when evaluating: the CNN's first conv output for all
10,000 test images at once would take 865 MB."""


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark configuration: the model, the optimizer, the batching and threads.

    ``model == "mlp"``: a ReLU MLP with layer widths ``sizes``. ``model == "cnn"``: on
    ``(28, 28, 1)`` images, per entry of ``channels`` a 3x3 "valid" convolution, ReLU and
    2x2 max-pooling; then flatten (1600), ``dense(dense_size)``, ReLU, dropout
    (``dropout``, training only) and ``dense(10)``. Either has He-normal weights (fan_in)
    and zero biases and is trained on softmax cross-entropy with Adam(``lr``) for
    ``epochs`` epochs; each epoch is a fresh permutation of the first ``train_size``
    training images in batches of ``batch_size`` (the last batch is smaller when
    ``batch_size`` does not divide ``train_size``).
    """

    batch_size: int = 128
    epochs: int = 6
    threads: int = 1
    seed: int = 0
    lr: float = 1e-3
    sizes: tuple[int, ...] = (784, 128, 64, 10)
    model: str = "mlp"
    train_size: int = TRAIN_SIZE
    channels: tuple[int, ...] = (32, 64)
    dense_size: int = 128
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; expected one of {MODELS}")
        if not 1 <= self.train_size <= TRAIN_SIZE:
            raise ValueError(f"train_size must be in 1..{TRAIN_SIZE}, got {self.train_size}")

    @property
    def eval_chunk(self) -> int:
        """Test images per forward pass when evaluating."""
        return EVAL_CHUNKS[self.model]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Data:
    """The training and test sets: ``x`` float32 in [0, 1], ``(n, 784)`` for the MLP and
    ``(n, 28, 28)`` for the CNN; ``y`` int64."""

    x_train: F32
    y_train: I64
    x_test: F32
    y_test: I64


def load_data(model: str = "mlp", train_size: int = TRAIN_SIZE) -> Data:
    """Fashion-MNIST as every peer uses it (see the module docstring): the first
    ``train_size`` training images, all test images, shaped for ``model``."""
    from fnn import data

    ds = data.load_fashion_mnist()
    shape = data.flatten if model == "mlp" else np.ascontiguousarray
    return Data(
        shape(data.to_float(ds.x_train[:train_size])),
        np.array(ds.y_train[:train_size], np.int64),  # writable: torch.from_numpy warns else
        shape(data.to_float(ds.x_test)),
        np.array(ds.y_test, np.int64),
    )


def in_chunks(forward: Callable[[Any], Any], x: Any, size: int) -> F32:
    """``forward`` over ``x`` (an array or a tensor) in chunks of ``size`` rows, its
    outputs concatenated as one float32 NumPy array."""
    parts = [np.asarray(forward(x[i : i + size]), np.float32) for i in range(0, len(x), size)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def cpu_seconds() -> float:
    """User plus system CPU time of this process, all threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs of the machine spent busy or stolen by the hypervisor so far,
    from ``/proc/stat`` (NaN where there is none)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS_PER_SECOND


def peak_rss_bytes() -> int:
    """The peak resident set size of this process so far (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes() -> int:
    """The current resident set size (``VmRSS`` of ``/proc/self/status``), 0 if unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class EpochClock:
    """Times each ``with clock:`` block: wall seconds (``time.perf_counter``), the
    process's CPU seconds (``cpu / wall`` shows how many cores a peer really used) and the
    whole machine's busy CPU seconds (what other processes took shows as the rest)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.machine: list[float] = []
        self._start = (0.0, 0.0, 0.0)

    def __enter__(self) -> EpochClock:
        self._start = (time.perf_counter(), cpu_seconds(), machine_busy_seconds())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        wall, cpu, busy = time.perf_counter(), cpu_seconds(), machine_busy_seconds()
        self.wall.append(wall - self._start[0])
        self.cpu.append(cpu - self._start[1])
        self.machine.append(busy - self._start[2])


def accuracy_and_loss(logits: F32, labels: I64) -> tuple[float, float]:
    """Test accuracy and mean softmax cross-entropy of ``logits`` (computed in float64)."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -float(log_p[np.arange(len(labels)), labels].mean())
    return float(np.mean(logits.argmax(axis=1) == labels)), loss


def result(
    peer: str,
    workload: Workload,
    clock: EpochClock,
    logits: F32,
    labels: I64,
    versions: dict[str, str],
    rss_before_training: int,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON record a peer's process writes for the driver."""
    accuracy, loss = accuracy_and_loss(logits, labels)
    return {
        "kind": "peer",
        "peer": peer,
        "workload": workload.to_json(),
        "epoch_seconds": clock.wall,
        "epoch_cpu_seconds": clock.cpu,
        "epoch_machine_busy_seconds": clock.machine,
        "test_accuracy": accuracy,
        "test_loss": loss,
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_before_training_bytes": rss_before_training,
        "versions": {"numpy": np.__version__, **versions},
        **extra,
    }
