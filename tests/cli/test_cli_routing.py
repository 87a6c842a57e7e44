"""`gatewayz routing eval [--json]`: the evaluation report of the routers (issue 18)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gatewayz.cli.main import app
from gatewayz.routing.smart import evaluate
from gatewayz.routing.smart.classifier import shipped


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped model's own probabilities instead of five trainings (the cross-validation
    itself is tests/routing/smart/test_classifier.py's)."""

    def probabilities(rows: list[evaluate.Labelled]) -> dict[str, list[float]]:
        return {r.id: shipped().probabilities(r.prompt) for r in rows}

    monkeypatch.setattr(evaluate, "cross_validated", probabilities)


def test_eval_json_has_prompts_accuracy_and_a_table_per_mode(quick: None) -> None:
    out = CliRunner().invoke(app, ["routing", "eval", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["prompts"] == len(evaluate.load_prompts()) >= 150
    assert 0 <= report["tier_accuracy"] <= 1
    general, code = report["routers"]["general"], report["routers"]["code"]
    assert set(general["modes"]) >= {"general:cost", "always-strongest", "always-cheapest"}
    assert set(code["modes"]) >= {"code:auto", "code:price", "code:quality", "code:agentic"}
    for table in (general["modes"], code["modes"]):
        assert table["always-strongest"]["saving_vs_strongest"] == 0
        assert table["always-strongest"]["under_served"] == 0
        for row in table.values():
            assert {"usd_per_request", "under_served", "picks"} <= set(row)
    # Always the cheapest model: cheaper than any mode, and the most under-served.
    cheapest = general["modes"]["always-cheapest"]
    for row in general["modes"].values():
        assert cheapest["usd_per_request"] <= row["usd_per_request"]
        assert cheapest["under_served"] >= row["under_served"]


def test_eval_prints_a_table(quick: None) -> None:
    out = CliRunner().invoke(app, ["routing", "eval"])
    assert out.exit_code == 0, out.output
    assert "tier accuracy" in out.output and "code:price" in out.output
    assert "not live answer quality" in out.output
