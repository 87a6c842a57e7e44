"""CM-7.8, CM-7.9: the plan tiers are data (billing/plans.toml), with SPEC §7's limits."""

from gatewayz.billing.plans import load_plans


def test_cm_7_8_plan_tiers_exist() -> None:
    plans = load_plans()
    assert list(plans.tiers) == ["trial", "dev", "team", "enterprise"]
    assert [t.name for t in plans.tiers.values()] == ["Trial", "Dev", "Team", "Enterprise"]
    # SPEC §7 reference limits: RPM / tokens per day / tokens per month.
    expected = {
        "trial": (60, 500_000, 15_000_000),
        "dev": (250, 2_000_000, 60_000_000),
        "team": (1000, 10_000_000, 300_000_000),
        "enterprise": (5000, 50_000_000, 1_500_000_000),
    }
    for slug, (rpm, tpd, tpm) in expected.items():
        t = plans.tier(slug)
        assert (t.rpm, t.tokens_per_day, t.tokens_per_month) == (rpm, tpd, tpm), slug
    trial = plans.trial
    assert (trial.days, str(trial.credits_usd), trial.max_tokens, trial.max_requests) == (
        3,
        "5.00",
        1_000_000,
        10_000,
    )


def test_cm_7_9_team_has_higher_rate_limits_than_dev() -> None:
    plans = load_plans()
    dev, team, enterprise = plans.tier("dev"), plans.tier("team"), plans.tier("enterprise")
    for field in ("rpm", "tokens_per_day", "tokens_per_month"):
        assert getattr(dev, field) < getattr(team, field) < getattr(enterprise, field), field
    # Callers without a key are stricter than any tier.
    assert plans.anonymous_rpm < min(t.rpm for t in plans.tiers.values())


def test_unknown_plan_gets_the_most_limited_tier() -> None:
    assert load_plans().tier("no-such-plan") == load_plans().tier("trial")
