"""Shared fixtures: the `dagmath` CLI binary (to compare verdicts with), and a small dataset
generated through the Python module."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import dagmath

ROOT = Path(__file__).resolve().parents[2]

RECIPE = """
name = "pytest"
seed = 42
shard_size = 500

[[splits]]
name = "train"
size = 300
ops = "2-10"
templates = { zoo = 0.7, school = 0.2, festival = 0.1 }
modes = { forward = 0.5, reverse = 0.5 }

[[splits]]
name = "test"
held_out = true
size = 60
ops = "11-14"
templates = { zoo = 1.0 }
modes = { forward = 0.5, reverse = 0.5 }
"""


@pytest.fixture(scope="session")
def cli() -> str:
    """The CLI: $DAGMATH_BIN, else cargo's build of this checkout, else `dagmath` on PATH."""
    for c in [os.environ.get("DAGMATH_BIN"), ROOT / "target/debug/dagmath", ROOT / "target/release/dagmath"]:
        if c and Path(c).is_file():
            return str(c)
    found = shutil.which("dagmath")
    if found is None:
        pytest.fail("no dagmath binary: run `cargo build` or set DAGMATH_BIN")
    return found


def run_cli(cli: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([cli, *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ds")
    recipe = d / "recipe.toml"
    recipe.write_text(RECIPE)
    dagmath.generate(str(recipe), str(d / "out"), threads=2)
    return d / "out"
