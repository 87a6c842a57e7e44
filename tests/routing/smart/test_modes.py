"""Router names (CM-4.1.1–4.1.4, 4.1.8, 4.2.1–4.2.4): parsed into a router and a mode; any
other `router:` name is a 400 that lists the valid ones."""

from __future__ import annotations

import pytest

from gatewayz.errors import InvalidRequest
from gatewayz.routing.smart.modes import VALID, RouterName, parse_router


def test_cm_4_1_1_general_router_parses_quality_mode() -> None:
    assert parse_router("router:general:quality") == RouterName("general", "quality")


def test_cm_4_1_2_general_router_parses_cost_mode() -> None:
    assert parse_router("router:general:cost") == RouterName("general", "cost")


def test_cm_4_1_3_general_router_parses_latency_mode() -> None:
    assert parse_router("router:general:latency") == RouterName("general", "latency")


def test_cm_4_1_4_general_router_parses_balanced_mode() -> None:
    assert parse_router("router:general:balanced") == RouterName("general", "balanced")
    assert parse_router("router:general") == RouterName("general", "balanced")


@pytest.mark.parametrize(
    "name", ["router:general:invalid", "router:general:", "router:code:cheap", "router:x:cost"]
)
def test_cm_4_1_8_general_router_invalid_mode_rejected(name: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_router(name)
    assert err.value.status == 400 and err.value.param == "model"
    for valid in VALID:
        assert valid in err.value.message


def test_cm_4_2_1_code_router_parses_auto_mode() -> None:
    assert parse_router("router:code:auto") == RouterName("code", "auto")
    assert parse_router("router:code") == RouterName("code", "auto")


def test_cm_4_2_2_code_router_parses_agentic_mode() -> None:
    assert parse_router("router:code:agentic") == RouterName("code", "agentic")


def test_cm_4_2_3_code_router_parses_price_mode() -> None:
    assert parse_router("router:code:price") == RouterName("code", "price")


def test_cm_4_2_4_code_router_parses_quality_mode() -> None:
    assert parse_router("router:code:quality") == RouterName("code", "quality")


def test_other_models_are_not_routers_and_case_is_ignored() -> None:
    assert parse_router("openai/gpt-4o") is None
    assert parse_router("routers/x") is None
    assert parse_router("Router:General:Cost") == RouterName("general", "cost")


def test_a_long_invalid_name_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_router("router:general:" + "x" * 500)
    assert len(err.value.message) < 500
