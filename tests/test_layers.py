"""The packages of `gatewayz` form no import cycle at run time (imports made only for type
checking are not run), and they respect the layers declared in pyproject.toml
(`[tool.importlinter]`, also checked by `lint-imports` in `make lint`)."""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import grimp
import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("gatewayz", exclude_type_checking_imports=True)


def _packages(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.find_children("gatewayz"))


def test_no_two_packages_import_each_other(graph: grimp.ImportGraph) -> None:
    cycles = [
        (a, b)
        for a, b in itertools.combinations(_packages(graph), 2)
        if graph.chain_exists(importer=a, imported=b, as_packages=True)
        and graph.chain_exists(importer=b, imported=a, as_packages=True)
    ]
    assert cycles == []


def test_no_package_imports_a_layer_above_it(graph: grimp.ImportGraph) -> None:
    with PYPROJECT.open("rb") as f:
        contracts = tomllib.load(f)["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    levels = {name.strip(): i for i, line in enumerate(layers) for name in line.split("|")}
    assert set(levels) == set(_packages(graph)), "every package has its layer"
    upward = [
        (low, high)
        for low, high in itertools.permutations(levels, 2)
        if levels[low] > levels[high]
        and graph.direct_import_exists(importer=low, imported=high, as_packages=True)
    ]
    assert upward == []
