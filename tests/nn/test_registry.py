"""The layer registry (fnn/nn/_registry.py): register, specs and from_spec, and files that
name only registered layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import nn, random
from tests.support import user_layers  # noqa: F401 (registers test_center)


def test_from_spec_rebuilds_the_same_model(key: random.Key) -> None:
    model = nn.serial(nn.flatten(), nn.dense(4), nn.leaky_relu(0.2), nn.dense(2), nn.softmax())
    assert model.spec is not None
    rebuilt = nn.from_spec(model.spec)
    assert rebuilt.spec == model.spec
    params = model.init(key, (3,))
    x = np.ones((2, 3), np.float32)
    assert rebuilt.apply(params, x).tobytes() == model.apply(params, x).tobytes()


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ({"layer": "os.system"}, ValueError, "unknown layer 'os.system'"),
        ({"layer": "dense"}, ValueError, "misses the key 'features'"),
        ({"layer": "dense", "features": 3, "code": "x"}, ValueError, "unexpected keys"),
        ({"layer": "dense", "features": "3"}, TypeError, "must be an int"),
        ({"layer": "serial", "layers": {"a": 1}}, ValueError, "needs a list for 'layers'"),
        ([1, 2], TypeError, "must be a mapping"),
    ],
)
def test_from_spec_rejects_bad_specs(spec: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        nn.from_spec(spec)


def test_an_unregistered_layer_says_how_to_save_it(tmp_path: Path, key: random.Key) -> None:
    plain = nn.parameterless(lambda x: (x, None), lambda r, dy: dy)
    model = nn.serial(nn.dense(2), plain)
    assert model.spec is None
    with pytest.raises(ValueError, match="register it"):
        fnn.io.save_model(tmp_path / "m.npz", model, model.init(key, (3,)), in_shape=(3,))


def test_registering_a_taken_name_or_a_bad_signature_fails() -> None:
    with pytest.raises(ValueError, match="'dense' is already registered"):
        nn.register("dense")(lambda features: nn.dense(features))
    with pytest.raises(ValueError, match=r"cannot take .*layer"):
        nn.register("test_bad")(lambda layer: layer)
    with pytest.raises(ValueError, match="a layer name must be a str"):
        nn.register("")


def test_positional_only_arguments_go_in_args() -> None:
    @nn.register("test_wrap")
    def wrap(layer: nn.Layer[Any, Any], /, times: int = 1) -> nn.Layer[Any, Any]:
        return nn.serial(*[layer] * times)

    made = wrap(nn.relu(), times=2)
    assert made.spec == {"layer": "test_wrap", "times": 2, "args": [{"layer": "relu"}]}
    assert nn.from_spec(made.spec).spec == made.spec
    with pytest.raises(ValueError, match=r"needs 'args', a list of 1 to 1 values, got \[\]"):
        nn.from_spec({"layer": "test_wrap", "times": 2})
    with pytest.raises(ValueError, match=r"unexpected keys \['args'\]"):
        nn.from_spec({"layer": "relu", "args": []})


def test_a_file_names_only_registered_layers(tmp_path: Path, key: random.Key) -> None:
    with pytest.raises(ValueError, match=r"unknown layer 'os\.system'"):
        nn.from_spec({"layer": "os.system"})
    assert nn.from_spec({"layer": "test_center", "momentum": 0.5}).spec == {
        "layer": "test_center",
        "momentum": 0.5,
    }


def _ident() -> nn.Layer[None, None]:
    return nn.parameterless(lambda x: (x, None), lambda r, dy: dy)


@pytest.mark.parametrize("types", [(1,), ("Params",), (object,)])
def test_a_refused_registration_registers_nothing(types: Any) -> None:
    """Bad ``types`` are refused with a TypeError naming them, and the layer's name stays
    free (it was registered before the types were checked)."""
    name = f"refused_types_{types[0]!s}"
    with pytest.raises(TypeError, match="types must be attrs classes or named tuples"):
        nn.register(name, types=types)(_ident)
    assert name not in nn.LAYERS


@pytest.mark.parametrize("name", ["normal(0.5)", "constant(1)", "normal()"])
def test_an_initializer_name_a_made_one_shadows_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="would never find it"):
        nn.register_initializer(name)
    assert name not in nn.INITIALIZERS
