"""Every data file under src/gatewayz ships in the package: a non-editable install (the
container image, a wheel) has what the source tree has — prices, routing data, the router's
model and labelled set, migrations, the console's files."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "gatewayz"


def test_every_data_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["gatewayz"]
    data = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and p.name != "README.md"
    ]
    assert data
    # fnmatch's * also crosses "/", so each glob is matched segment by segment.
    missing = [
        f for f in data if not any(f.count("/") == g.count("/") and fnmatch(f, g) for g in globs)
    ]
    assert missing == []
