"""The PyTorch peers: eager mode, ``torch.optim.Adam(..., fused=True)`` (its fastest Adam).

The loop is the one PyTorch's tutorials teach: a ``torch.randperm`` per epoch (timed, as
every peer's permutation is), ``x[idx]`` gathers, ``zero_grad(set_to_none=True)``,
``F.cross_entropy``, ``backward``, ``step``. ``x`` does not require a gradient, so
autograd never computes the first layer's input gradient (as fnn does not). PyTorch is
imported inside :func:`run` (it is not a dependency of fnn; mypy sees it as ``Any``).

The CNN is ``Conv2d(1, 32, 3)``, ``ReLU``, ``MaxPool2d(2)``, ``Conv2d(32, 64, 3)``,
``ReLU``, ``MaxPool2d(2)``, ``Flatten``, ``Linear(1600, 128)``, ``ReLU``, ``Dropout(0.5)``,
``Linear(128, 10)`` on ``(n, 1, 28, 28)`` images (a view of the data), in train mode while
training and eval mode for the test set. Two peers run it: ``torch`` in PyTorch's default
NCHW memory format, and ``torch-cl`` (``channels_last=True``) with the model moved to
``torch.channels_last`` and each batch made ``.contiguous(memory_format=
torch.channels_last)``; which is faster depends on the machine, and the report counts
the faster as "PyTorch".
"""

from __future__ import annotations

import importlib
import itertools
from typing import Any

import workload as wl


def _he_normal(torch: Any, layer: Any) -> Any:
    """Kaiming-normal weights (fan_in, ReLU gain: std sqrt(2 / fan_in)), zero biases."""
    torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    torch.nn.init.zeros_(layer.bias)
    return layer


def build_model(torch: Any, w: wl.Workload) -> Any:
    """The workload's model as a ``torch.nn.Sequential`` (on the current seed)."""
    nn = torch.nn
    layers: list[Any] = []
    if w.model == "mlp":
        for fan_in, fan_out in itertools.pairwise(w.sizes):
            layers += [_he_normal(torch, nn.Linear(fan_in, fan_out)), nn.ReLU()]
        return nn.Sequential(*layers[:-1])
    height, width = wl.IMAGE_SHAPE
    channels = 1
    for features in w.channels:
        layers += [_he_normal(torch, nn.Conv2d(channels, features, 3)), nn.ReLU()]
        layers.append(nn.MaxPool2d(2))
        channels, height, width = features, (height - 2) // 2, (width - 2) // 2
    layers += [nn.Flatten(), _he_normal(torch, nn.Linear(channels * height * width, w.dense_size))]
    layers.append(nn.ReLU())
    layers += [nn.Dropout(w.dropout)] if w.dropout else []
    layers.append(_he_normal(torch, nn.Linear(w.dense_size, 10)))
    return nn.Sequential(*layers)


def run(w: wl.Workload, channels_last: bool = False) -> dict[str, Any]:
    torch: Any = importlib.import_module("torch")
    torch.set_num_threads(w.threads)
    torch.set_num_interop_threads(1)
    functional: Any = torch.nn.functional
    if channels_last and w.model != "cnn":
        raise ValueError("channels_last applies to the CNN workload")

    d = wl.load_data(w.model, w.train_size)
    x, y = torch.from_numpy(d.x_train), torch.from_numpy(d.y_train)
    x_test = torch.from_numpy(d.x_test)
    if w.model == "cnn":
        x, x_test = x.unsqueeze(1), x_test.unsqueeze(1)  # (n, 1, 28, 28) views
    torch.manual_seed(w.seed)
    model = build_model(torch, w)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=w.lr, fused=True)
    generator = torch.Generator().manual_seed(w.seed)
    n, size = len(d.x_train), w.batch_size

    rss = wl.rss_bytes()
    clock = wl.EpochClock()
    model.train()
    for _ in range(w.epochs):
        with clock:
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, size):
                idx = order[start : start + size]
                xb = x[idx]
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                opt.zero_grad(set_to_none=True)
                loss = functional.cross_entropy(model(xb), y[idx])
                loss.backward()
                opt.step()

    model.eval()
    with torch.inference_mode():
        logits = wl.in_chunks(
            lambda xs: model(xs.contiguous(memory_format=memory_format)).numpy(),
            x_test,
            w.eval_chunk,
        )
    versions = {"torch": str(torch.__version__), "torch_threads": str(torch.get_num_threads())}
    name = "torch-cl" if channels_last else "torch"
    return wl.result(name, w, clock, logits, d.y_test, versions, rss)
