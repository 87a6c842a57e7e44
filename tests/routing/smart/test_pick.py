"""The routers' choice among served candidates (CM-4.1.5–4.1.7, 4.2.5, 4.2.7), and the data it
chooses from."""

from __future__ import annotations

import pytest

from gatewayz.billing.pricing import PriceBook
from gatewayz.routing.smart.data import Candidate, RouterData, shipped
from gatewayz.routing.smart.evaluate import cheapest
from gatewayz.routing.smart.modes import RouterName
from gatewayz.routing.smart.pick import Option, decide

GENERAL = RouterData.from_mapping(
    {
        "meta": {"general_benchmark": "test index", "code_benchmark": "SWE-bench Verified"},
        "latency_prior_ms": {"1": 300, "2": 500, "3": 900, "4": 1500},
        "general": {
            "small/fast": {"score": 20, "tier": 1},
            "small/cheap": {"score": 25, "tier": 1},
            "mid/a": {"score": 40, "tier": 2},
            "mid/b": {"score": 45, "tier": 2},
            "big/a": {"score": 60, "tier": 3},
            "top/a": {"score": 80, "tier": 4},
        },
        "code": {
            "code/small": {"swe_bench": 20, "tier": 1},
            "code/mid": {"swe_bench": 45, "tier": 2},
            "code/mid-cheap": {"swe_bench": 40, "tier": 2},
            "code/big": {"swe_bench": 62, "tier": 3},
            "code/top": {"swe_bench": 75, "tier": 4},
            "code/top-2": {"swe_bench": 72, "tier": 4},
        },
    }
)
PRICE = {"small/fast": 0.2, "small/cheap": 0.1, "mid/a": 0.6, "mid/b": 1.0, "big/a": 5.0}
PRICE |= {"top/a": 30.0, "code/small": 0.2, "code/mid": 1.5, "code/mid-cheap": 0.5}
PRICE |= {"code/big": 6.0, "code/top": 20.0, "code/top-2": 12.0}
P50 = {"small/fast": 120.0, "mid/a": 700.0, "mid/b": 250.0, "big/a": 400.0}


def options(kind: str, *, drop: tuple[str, ...] = ()) -> list[Option]:
    return [
        Option(c, PRICE[c.model], P50.get(c.model, GENERAL.prior_ms(c.tier)), c.model in P50)
        for c in GENERAL.candidates[kind]
        if c.model not in drop
    ]


def pick(kind: str, mode: str, tier: int, **kw: tuple[str, ...]) -> str:
    decision = decide(RouterName(kind, mode), tier, options(kind, **kw))
    assert decision is not None
    return decision.model


def test_cm_4_1_5_general_router_quality_selects_high_benchmark_model() -> None:
    for tier in (1, 2, 3, 4):
        assert pick("general", "quality", tier) == "top/a"
    assert pick("general", "quality", 1, drop=("top/a",)) == "big/a"


def test_cm_4_1_6_general_router_cost_selects_cheapest_model() -> None:
    # The cheapest whose tier clears the prompt's: the floor rises with the prompt's tier.
    assert pick("general", "cost", 1) == "small/cheap"
    assert pick("general", "cost", 2) == "mid/a"
    assert pick("general", "cost", 3) == "big/a"
    assert pick("general", "cost", 4) == "top/a"
    # Nothing at the floor served: the cheapest of what is.
    assert pick("general", "cost", 4, drop=("top/a",)) == "small/cheap"


def test_cm_4_1_7_general_router_latency_selects_fastest_model() -> None:
    # Live P50s where measured (small/fast 120 ms, mid/b 250 ms), the tier's prior elsewhere.
    assert pick("general", "latency", 1) == "small/fast"
    assert pick("general", "latency", 2) == "mid/b"
    assert pick("general", "latency", 3) == "big/a"
    decision = decide(RouterName("general", "latency"), 2, options("general"))
    assert decision is not None and "250 ms live" in decision.reason


def test_balanced_blends_score_price_and_speed_above_the_floor() -> None:
    decision = decide(RouterName("general", "balanced"), 2, options("general"))
    assert decision is not None
    assert all(o.tier >= 2 for o in decision.order)
    # 0.5 x score + 0.3 x cheapness + 0.2 x speed, each scaled among the four: big/a 0.54,
    # mid/b 0.52, top/a 0.50, mid/a 0.38.
    assert [o.model for o in decision.order] == ["big/a", "mid/b", "top/a", "mid/a"]


def test_cm_4_2_5_code_router_uses_swe_bench_scores() -> None:
    # Within a tier, auto takes the higher SWE-bench score; price the cheaper.
    assert pick("code", "auto", 2) == "code/mid"
    assert pick("code", "price", 2) == "code/mid-cheap"
    assert pick("code", "auto", 4) == "code/top"
    assert pick("code", "price", 4) == "code/top-2"
    decision = decide(RouterName("code", "auto"), 3, options("code"))
    assert decision is not None and "62%" in decision.reason


def test_cm_4_2_7_code_router_matches_tier_to_model() -> None:
    score = {c.model: c.score for c in GENERAL.candidates["code"]}
    for mode in ("auto", "price", "quality"):
        picked = [pick("code", mode, tier) for tier in (1, 2, 3, 4)]
        scores = [score[m] for m in picked]
        assert scores == sorted(scores), (mode, picked)  # a harder tier, never a weaker model
    assert pick("code", "quality", 2) == "code/big"  # one tier up
    assert pick("code", "agentic", 1) == "code/top"  # the top tier whatever the prompt
    # A tier with nothing served goes up, not down.
    assert pick("code", "auto", 3, drop=("code/big",)) == "code/top"


def test_the_decision_header_names_mode_model_reason_and_runner_up() -> None:
    decision = decide(RouterName("general", "cost"), 2, options("general"))
    assert decision is not None
    header = decision.header()
    assert header.startswith("mode=general:cost; model=mid/a; reason=tier 2, cheapest at tier 2+")
    assert header.endswith("; runner_up=mid/b")
    assert header.isascii() and "\n" not in header
    assert decide(RouterName("general", "cost"), 2, []) is None


def test_the_same_input_gives_the_same_decision() -> None:
    name = RouterName("general", "balanced")
    first = decide(name, 3, options("general"))
    assert all(decide(name, 3, list(reversed(options("general")))) == first for _ in range(5))


def test_data_refuses_a_higher_tier_with_a_lower_score() -> None:
    with pytest.raises(ValueError, match="scores below"):
        RouterData.from_mapping(
            {"general": {"a/x": {"score": 50, "tier": 2}, "b/y": {"score": 40, "tier": 3}}}
        )
    with pytest.raises(ValueError, match="tier 5"):
        RouterData.from_mapping({"code": {"a/x": {"swe_bench": 50, "tier": 5}}})


def test_shipped_data_is_consistent_and_cited() -> None:
    data = shipped()
    assert data.updated is not None and all(data.benchmarks.values())
    for kind in ("general", "code"):
        cands: tuple[Candidate, ...] = data.candidates[kind]
        assert {c.tier for c in cands} == {1, 2, 3, 4}, kind
        assert all(c.source for c in cands), kind
    assert set(data.latency_prior_ms) == {1, 2, 3, 4}


def test_every_shipped_candidate_has_a_chat_price_in_the_price_book() -> None:
    book = PriceBook.load()
    for kind, cands in shipped().candidates.items():
        for c in cands:
            assert cheapest(book, c.model) is not None, (kind, c.model)
