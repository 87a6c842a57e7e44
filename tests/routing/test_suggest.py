"""Close-name suggestions for an unknown model (routing/known.py): the closest names first, at
most `limit`, found through a trigram index so a request never compares its name with every
name of a 10,000+ model catalog."""

from __future__ import annotations

from gatewayz.routing.known import POOL, Suggestions

NAMES = [
    "perplexity/sonar-medium-chat",
    "perplexity/sonar-small-chat",
    "perplexity/sonar-pro",
    "microsoft/phi-4",
    "meta-llama/llama-3.3-70b-instruct",
    "meta-llama/llama-3.1-405b-instruct",
    "llama-3.3-70b",
]


def test_a_typo_suggests_the_intended_name_first() -> None:
    s = Suggestions(NAMES)
    assert s.suggest("perplexity/sonar-medium-chta")[0] == "perplexity/sonar-medium-chat"
    assert s.suggest("meta-llama/llama-3.3-70b-instrct")[0] == "meta-llama/llama-3.3-70b-instruct"
    assert s.suggest("microsoft/phi4")[0] == "microsoft/phi-4"
    assert s.suggest("META-LLAMA/Llama-3.3-70B")[0].startswith("meta-llama/llama-3.3-70b")


def test_at_most_the_limit_never_the_name_itself_and_nothing_far() -> None:
    s = Suggestions(NAMES, limit=2)
    assert len(s.suggest("perplexity/sonar")) == 2
    assert "microsoft/phi-4" not in Suggestions(NAMES).suggest("microsoft/phi-4")
    assert Suggestions(NAMES).suggest("zz/qqqqqqqqqqqqqqqqqq") == ()
    assert Suggestions([]).suggest("anything") == ()
    assert Suggestions(NAMES).suggest("") == ()


def test_a_large_catalog_is_never_scanned_whole() -> None:
    names = [f"org{i % 300}/model-{i}-{'instruct' if i % 2 else 'chat'}" for i in range(20_000)]
    names.append("nousresearch/hermes-3-llama-3.1-405b")
    s = Suggestions(names)
    assert s.suggest("nousresearch/hermes-3-lama-3.1-405b")[0] == names[-1]
    assert 0 < s.compared <= POOL
    assert s.suggest("org8/model-12008-chta")[0] == "org8/model-12008-chat"
    assert s.compared <= POOL
    long = "x" * 256  # the longest model name a request may carry
    assert s.suggest(long) == () and s.compared <= POOL
