"""The PyTorch peer: eager mode, ``torch.optim.Adam(..., fused=True)`` (its fastest Adam).

The loop is the one PyTorch's tutorials teach: a ``torch.randperm`` per epoch (timed, as
every peer's permutation is), ``x[idx]`` gathers, ``zero_grad(set_to_none=True)``,
``F.cross_entropy``, ``backward``, ``step``. ``x`` does not require a gradient, so
autograd never computes the first layer's input gradient (as fnn does not). PyTorch is
imported inside :func:`run` (it is not a dependency of fnn; mypy sees it as ``Any``).
"""

from __future__ import annotations

import importlib
import itertools
from typing import Any

import workload as wl


def run(w: wl.Workload) -> dict[str, Any]:
    torch: Any = importlib.import_module("torch")
    torch.set_num_threads(w.threads)
    torch.set_num_interop_threads(1)
    functional: Any = torch.nn.functional

    d = wl.load_data()
    x, y = torch.from_numpy(d.x_train), torch.from_numpy(d.y_train)
    torch.manual_seed(w.seed)
    layers: list[Any] = []
    for fan_in, fan_out in itertools.pairwise(w.sizes):
        linear = torch.nn.Linear(fan_in, fan_out)
        torch.nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")  # std sqrt(2/fan_in)
        torch.nn.init.zeros_(linear.bias)
        layers += [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(model.parameters(), lr=w.lr, fused=True)
    generator = torch.Generator().manual_seed(w.seed)
    n, size = len(d.x_train), w.batch_size

    rss = wl.rss_bytes()
    clock = wl.EpochClock()
    for _ in range(w.epochs):
        with clock:
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, size):
                idx = order[start : start + size]
                opt.zero_grad(set_to_none=True)
                loss = functional.cross_entropy(model(x[idx]), y[idx])
                loss.backward()
                opt.step()

    with torch.inference_mode():
        logits = model(torch.from_numpy(d.x_test)).numpy()
    versions = {"torch": str(torch.__version__), "torch_threads": str(torch.get_num_threads())}
    return wl.result("torch", w, clock, logits, d.y_test, versions, rss)
