"""How well the routers do on the labelled set (`prompts.jsonl`): the classifier's tier
accuracy under k-fold cross-validation (every prompt predicted by a model that never saw it),
and for each mode the average price per request and the share of prompts sent to a model below
the tier they need, against always-strongest and always-cheapest baselines.

Offline figures: the labels are one author's judgement of each prompt's tier and of the
cheapest model tier that answers it well, not measured answer quality; prices are the packaged
price book's cheapest provider; a request is priced at its prompt (4 characters a token) and an
assumed answer length by tier (`ANSWER_TOKENS`); every candidate counts as served, each at its
tier's latency prior."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatewayz.billing.pricing import Price, PriceBook
from gatewayz.routing.smart.classifier import TIERS, TierModel, Training, floor, most_likely
from gatewayz.routing.smart.data import RouterData
from gatewayz.routing.smart.features import Prompt, clip
from gatewayz.routing.smart.modes import MODES, RouterName
from gatewayz.routing.smart.pick import Option, blended, decide

PROMPTS_FILE = Path(__file__).with_name("prompts.jsonl")
ANSWER_TOKENS = {1: 150, 2: 400, 3: 900, 4: 2000}
FOLDS = 5


@dataclass(frozen=True, slots=True)
class Labelled:
    id: str
    prompt: Prompt
    tier: int  # its complexity tier
    needs: int  # the cheapest model tier that answers it well


def load_prompts(path: Path = PROMPTS_FILE) -> list[Labelled]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            prompt = Prompt(row["kind"], clip(row["prompt"]), tuple(row.get("tools", ())))
            out.append(Labelled(row["id"], prompt, int(row["tier"]), int(row["needs"])))
    return out


def examples(rows: Sequence[Labelled]) -> list[tuple[Prompt, int]]:
    return [(r.prompt, r.tier) for r in rows]


def cross_validated(rows: Sequence[Labelled], how: Training = Training()) -> dict[str, list[float]]:
    """Each prompt's tier probabilities from a model trained on the other folds (folds dealt
    round-robin in id order, per kind and tier, so each fold has a share of every class)."""
    ordered = sorted(rows, key=lambda r: (r.prompt.kind, r.tier, r.id))
    fold = {r.id: i % FOLDS for i, r in enumerate(ordered)}
    found: dict[str, list[float]] = {}
    for k in range(FOLDS):
        model = TierModel.train(examples([r for r in rows if fold[r.id] != k]), how)
        found.update({r.id: model.probabilities(r.prompt) for r in rows if fold[r.id] == k})
    return found


def cheapest(book: PriceBook, model: str) -> Price | None:
    rows = [p for p in book.models.get(model, {}).values() if p.mode is None]
    return min(rows, key=blended, default=None)


def report(
    rows: Sequence[Labelled],
    data: RouterData,
    book: PriceBook,
    probabilities: dict[str, list[float]],
) -> dict[str, Any]:
    """The evaluation as one JSON-able object: tier accuracy of the most likely tier, routing
    at the routers' floor (classifier.CAUTION)."""
    predicted = {i: most_likely(p) for i, p in probabilities.items()}
    floors = {i: floor(p) for i, p in probabilities.items()}
    accuracy = sum(predicted[r.id] == r.tier for r in rows) / len(rows)
    modes: dict[str, Any] = {}
    for kind, names in MODES.items():
        mine = [r for r in rows if r.prompt.kind == kind]
        table = _router(kind, names, mine, data, book, floors)
        if table is not None:
            modes[kind] = table
    pairs = [(r.tier, predicted[r.id]) for r in rows]
    confusion = {str(t): {str(p): pairs.count((t, p)) for p in TIERS} for t in TIERS}
    return {
        "prompts": len(rows),
        "tier_accuracy": round(accuracy, 4),
        "folds": FOLDS,
        "confusion": confusion,  # labelled tier → predicted tier → prompts
        "assumptions": {
            "answer_tokens_by_tier": ANSWER_TOKENS,
            "chars_per_token": 4,
            "labels": "offline judgement of one author, not live answer quality",
        },
        "routers": modes,
    }


def _router(
    kind: str,
    names: Sequence[str],
    rows: Sequence[Labelled],
    data: RouterData,
    book: PriceBook,
    floors: dict[str, int],
) -> dict[str, Any] | None:
    """One router's table: each mode and the two baselines over the router's prompts."""
    prices = {c.model: p for c in data.candidates[kind] if (p := cheapest(book, c.model))}
    options = [
        Option(c, blended(prices[c.model]), data.prior_ms(c.tier))
        for c in data.candidates[kind]
        if c.model in prices
    ]
    if not rows or not options:
        return None
    strongest = max(options, key=lambda o: (o.score, -o.price))
    cheapest_one = min(options, key=lambda o: (o.price, -o.score))
    picks: dict[str, list[Option]] = {
        f"{kind}:{mode}": [_first(RouterName(kind, mode), floors[r.id], options) for r in rows]
        for mode in names
    }
    picks["always-strongest"] = [strongest] * len(rows)
    picks["always-cheapest"] = [cheapest_one] * len(rows)
    table = {label: _score(rows, chosen, prices) for label, chosen in picks.items()}
    top = table["always-strongest"]["usd_per_request"]
    for row in table.values():
        row["saving_vs_strongest"] = round(1 - row["usd_per_request"] / top, 4) if top else 0
    return {"prompts": len(rows), "models": len(options), "modes": table}


def _first(name: RouterName, tier: int, options: Sequence[Option]) -> Option:
    decision = decide(name, tier, options)
    assert decision is not None
    return decision.order[0]


def _score(
    rows: Sequence[Labelled],
    chosen: Sequence[Option],
    prices: dict[str, Price],
) -> dict[str, Any]:
    usd = 0.0
    under = 0
    picks: dict[str, int] = {}
    for r, o in zip(rows, chosen, strict=True):
        p = prices[o.model]
        tokens_in = max(1, len(r.prompt.text) // 4)
        usd += (tokens_in * float(p.prompt) + ANSWER_TOKENS[r.tier] * float(p.completion)) / 1e6
        under += o.tier < r.needs
        picks[o.model] = picks.get(o.model, 0) + 1
    return {
        "usd_per_request": round(usd / len(rows), 6),
        "under_served": round(under / len(rows), 4),
        "picks": dict(sorted(picks.items(), key=lambda kv: -kv[1])),
    }
