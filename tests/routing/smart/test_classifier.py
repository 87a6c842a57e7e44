"""The tier classifier (CM-4.2.6): local, deterministic, shipped as trained from the labelled
set, and at least 80 % accurate on it under cross-validation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from gatewayz.canonical.types import ChatRequest, ImagePart, Message, TextPart, Tool
from gatewayz.routing.smart import evaluate
from gatewayz.routing.smart.classifier import MODEL_FILE, TierModel, floor, most_likely, shipped
from gatewayz.routing.smart.features import HEAD, TAIL, Prompt, features, shape

TRACE = """I get this when I run the suite:

```
Traceback (most recent call last):
  File "app/billing/invoice.py", line 88, in total
    return sum(line.amount for line in self.lines) - self.discount
  File "app/billing/discounts.py", line 41, in discount
    raise ValueError("discount exceeds subtotal")
ValueError: discount exceeds subtotal
```
It only happens for invoices that mix currencies, after the refactor in app/billing/fx.py and
app/billing/models.py. Find out why and fix it without breaking the rounding rules.
"""


def test_cm_4_2_6_code_router_classifies_task_complexity() -> None:
    model = shipped()
    simple = Prompt("code", "Rename the variable `n` to `count` in this line: `n = n + 1`")
    agentic = Prompt(
        "code",
        "Our CI is red: investigate the failing tests across the repository, find the root "
        "cause, fix it in every affected module and run the whole suite until it passes.",
        ("read_file", "edit_file", "run_tests", "search_code"),
    )
    debugging = Prompt("code", TRACE)
    tiers = [model.predict(p) for p in (simple, debugging, agentic)]
    assert tiers[0] == 1
    assert tiers[0] < tiers[1] < tiers[2] == 4


def test_the_same_prompt_gives_the_same_tier_and_features() -> None:
    p = Prompt("general", "Prove that the square root of 2 is irrational.")
    assert features(p) == features(Prompt("general", p.text))
    probs = shipped().probabilities(p)
    assert abs(sum(probs) - 1) < 1e-9
    assert shipped().predict(p) == most_likely(probs)


def test_the_floor_goes_up_when_a_higher_tier_is_likely_enough() -> None:
    assert floor([0.7, 0.2, 0.1, 0.0]) == 1  # 0.3 above tier 1: under the 0.35 caution
    assert floor([0.6, 0.3, 0.1, 0.0]) == 2  # 0.4 above tier 1
    assert floor([0.0, 0.0, 0.0, 1.0]) == 4
    assert most_likely([0.6, 0.3, 0.1, 0.0]) == 1


def test_a_request_is_read_from_its_users_turns_tools_and_images() -> None:
    req = ChatRequest(
        "router:code",
        [
            Message("system", "You are terse."),
            Message("user", [TextPart("What is in this picture?"), ImagePart("https://x/y.png")]),
            Message("assistant", "A cat."),
            Message("user", "x" * (HEAD + TAIL + 500)),
        ],
        tools=[Tool("read_file"), Tool("run_tests")],
    )
    p = Prompt.of("code", req)
    assert p.images and p.tools == ("read_file", "run_tests")
    assert "You are terse" not in p.text and "A cat" not in p.text
    assert len(p.text) == HEAD + TAIL + 1  # a long prompt: its head and its tail
    assert "tools=1" in shape(p) and "tool:run_tests" in shape(p)


def test_shipped_model_is_what_the_training_script_makes_of_the_set(tmp_path: Path) -> None:
    rows = evaluate.load_prompts()
    model = TierModel.train(evaluate.examples(rows))
    model.meta = shipped().meta
    model.save(tmp_path / "model.json")
    assert (tmp_path / "model.json").read_bytes() == MODEL_FILE.read_bytes()
    digest = hashlib.sha256(evaluate.PROMPTS_FILE.read_bytes()).hexdigest()
    assert json.loads(MODEL_FILE.read_text())["meta"]["prompts_sha256"] == digest


def test_tier_accuracy_under_cross_validation_is_at_least_80_percent() -> None:
    rows = evaluate.load_prompts()
    assert len(rows) >= 150
    found = evaluate.cross_validated(rows)
    accuracy = sum(most_likely(found[r.id]) == r.tier for r in rows) / len(rows)
    assert accuracy >= 0.8
