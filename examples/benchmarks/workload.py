"""What every peer of the benchmark shares: the workload, the data, the epoch clock and
the memory gauge.

Each peer (``peer_fnn.py``, ``peer_torch.py``, ``peer_jax.py``, ``peer_numpy.py``) trains the model
``Workload.sizes`` describes on the same data, loaded here the same way for all: the
Fashion-MNIST files through ``fnn.data`` (verified by SHA-256), images ``uint8 -> float32 /
255``, flattened to ``(n, 784)``, labels int64.
"""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import time
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

TRAIN_SIZE = 60_000
"""Fashion-MNIST's training examples (the floor needs the count without the data)."""


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark configuration: the model, the optimizer, the batching and threads.

    The model is a ReLU MLP with layer widths ``sizes`` (He-normal weights, zero biases),
    trained on softmax cross-entropy with Adam(``lr``) for ``epochs`` epochs; each epoch
    is a fresh permutation of the training set in batches of ``batch_size`` (the last
    batch is smaller when ``batch_size`` does not divide the training set).
    """

    batch_size: int = 128
    epochs: int = 6
    threads: int = 1
    seed: int = 0
    lr: float = 1e-3
    sizes: tuple[int, ...] = (784, 128, 64, 10)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Data:
    """The training and test sets: ``x`` float32 ``(n, 784)`` in [0, 1], ``y`` int64."""

    x_train: F32
    y_train: I64
    x_test: F32
    y_test: I64


def load_data() -> Data:
    """Fashion-MNIST as every peer uses it (see the module docstring)."""
    from fnn import data

    ds = data.load_fashion_mnist()
    return Data(
        data.flatten(data.to_float(ds.x_train)),
        np.array(ds.y_train, np.int64),  # writable copies: torch.from_numpy warns otherwise
        data.flatten(data.to_float(ds.x_test)),
        np.array(ds.y_test, np.int64),
    )


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
