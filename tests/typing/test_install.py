"""fnn's types reach a user: fnn installed as the README's Install section says, into a
fresh environment, type-checks a user's script with ``mypy --strict`` run from a
directory outside the repository.

The environment is made without pip (``venv --without-pip``) and filled by this
interpreter's pip through ``pip --python``, with pip's cache: the same install as a
``pip install -e .`` run inside it, a few seconds faster. Before fnn is installed the
same mypy must fail to find it, so the test cannot pass on a mypy that finds fnn some
other way (the repository on ``sys.path``, ``MYPYPATH``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """\
from typing_extensions import assert_type  # typing's from Python 3.11; mypy brings this

import numpy as np

import fnn
from fnn import nn, optim

model = nn.serial(nn.dense(3), nn.relu(), nn.dense(2))
params = model.init(fnn.random.key(0), (4,))
assert_type(params, tuple[nn.DenseParams, None, nn.DenseParams])
opt = optim.adam(1e-3)
state = opt.init(params)
state, params = opt.update(state, params)
y = model.apply(params, np.ones((5, 4), np.float32))
model.apply(params[0], y)  # one layer's params handed to the model
"""
"""A user's script: its last line is the mistake mypy must report (and nothing else)."""


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _pip(python: Path, *args: str) -> None:
    done = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *args], REPO
    )
    assert done.returncode == 0, done.stderr


def test_the_readmes_install_type_checks_from_outside_the_repository(tmp_path: Path) -> None:
    install = re.search(r"## Install\n(.*?)\n## ", (REPO / "README.md").read_text(), re.DOTALL)
    assert install is not None
    assert "    pip install -e .\n" in install.group(1)  # the command installed below
    assert "mypy" in install.group(1)  # ... and where mypy must be to see it
    env, user = tmp_path / "env", tmp_path / "user"
    user.mkdir()
    assert not user.resolve().is_relative_to(REPO)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    _pip(python, "mypy")
    (user / "script.py").write_text(SCRIPT)
    mypy = [str(env / "bin" / "mypy"), "--strict", "script.py"]

    before = _run(mypy, user)
    assert 'Cannot find implementation or library stub for module named "fnn"' in before.stdout

    _pip(python, "-e", str(REPO))
    after = _run(mypy, user)
    errors = [line for line in after.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, after.stdout
    assert errors[0].startswith('script.py:15: error: Argument 1 to "apply" of "Layer"'), errors

    # The install puts fnn on the path and nothing else of the repository: the user's own
    # tests/ (no __init__.py, as pytest's) is theirs, not fnn's test suite.
    (user / "tests").mkdir()
    (user / "tests" / "helpers.py").write_text("VALUE = 1\n")
    probe = "from tests.helpers import VALUE; import fnn, importlib.util as u; "
    probe += "print(VALUE, u.find_spec('examples'), fnn.nn.dense.__name__)"
    imported = _run([str(python), "-c", probe], user)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "1 None dense\n"


def test_the_sdist_holds_the_package_and_builds_a_wheel_of_it(tmp_path: Path) -> None:
    """The source distribution holds fnn/ (the link .editable/fnn, walked first, took its
    place: a wheel built from that sdist held no package), and a wheel built from the
    unpacked sdist holds fnn with its typing marker and format spec."""
    import tarfile
    import zipfile

    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    sdist = Path(next(iter(SdistBuilder(str(REPO)).build(directory=str(tmp_path / "dist")))))
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path / "src", filter="data")
    assert any(n.endswith("/fnn/__init__.py") for n in names), names[:10]
    assert not any("/.editable" in n for n in names)
    (unpacked,) = (tmp_path / "src").iterdir()
    wheel = next(iter(WheelBuilder(str(unpacked)).build(directory=str(tmp_path / "wheel"))))
    with zipfile.ZipFile(wheel) as built:
        inside = set(built.namelist())
    assert {"fnn/__init__.py", "fnn/py.typed", "fnn/io/FORMAT.md"} <= inside
