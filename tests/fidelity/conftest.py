"""Collects the fidelity-matrix outcomes and writes docs/fidelity.md from them.

The table is produced by the test suite itself: each cell is one test in test_matrix.py.
It is written only when the whole matrix ran (not for a filtered run). Under CI=true a
committed table that no longer matches the suite's results fails the run, so the document
cannot go stale.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fidelity.matrix import DIALECTS, FAMILIES, MEDIA, SCENARIOS, render_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"
_results: dict[tuple[str, str, str], str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "test_matrix.py::test_cell" in report.nodeid:
        dialect, family, scenario = report.nodeid.split("[", 1)[1].rstrip("]").split("-")
        key = (dialect, family, scenario)
    elif "test_media_matrix.py::test_media_cell" in report.nodeid:
        family, operation = report.nodeid.split("[", 1)[1].rstrip("]").split("-")
        key = ("media", family, operation)
    else:
        return
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _results[key] = "n/a: " + reason.removeprefix("Skipped: ")
    elif report.failed:
        _results[key] = "FAIL"
    elif report.when == "call":
        _results[key] = "pass"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    expected = len(FAMILIES) * (len(DIALECTS) * len(SCENARIOS) + len(MEDIA))
    if len(_results) != expected:
        return  # a filtered run: leave the document alone
    text = render_table(_results)
    current = DOC.read_text() if DOC.exists() else ""
    if os.environ.get("CI", "").lower() == "true":
        if current != text:
            print("\ndocs/fidelity.md is stale: run `make test` and commit it")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    if current != text:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text)
