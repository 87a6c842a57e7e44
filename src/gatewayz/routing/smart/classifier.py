"""The complexity-tier classifier: multinomial logistic regression over the hashed features of
`features.py`, trained on the labelled set (`prompts.jsonl`) by `scripts/train_router.py` and
shipped as `tier_model.json`. Pure Python, no provider call: a prediction is one sparse dot
product per tier (tens of microseconds)."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from gatewayz.routing.smart.features import Prompt, features

TIERS = (1, 2, 3, 4)
# The routers' floor: the lowest tier t with P(tier > t) below this, so a prompt the model is
# unsure about goes up a tier (fewer prompts under-served, in cross-validation, for a little
# more cost: routing/smart/README.md).
CAUTION = 0.35
MODEL_FILE = Path(__file__).with_name("tier_model.json")


@dataclass(frozen=True)
class Training:
    epochs: int = 15
    rate: float = 0.5  # AdaGrad's base step
    l2: float = 1e-3
    seed: int = 7


@dataclass
class TierModel:
    weights: dict[int, list[float]]  # feature bucket → one weight per tier
    bias: list[float]
    meta: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, p: Prompt) -> list[float]:
        return _softmax(self._scores(features(p)))

    def predict(self, p: Prompt) -> int:
        """The most likely tier (what tier accuracy measures)."""
        return most_likely(self.probabilities(p))

    def floor(self, p: Prompt) -> int:
        """The tier the routers serve a prompt at (`CAUTION`)."""
        return floor(self.probabilities(p))

    def _scores(self, vec: dict[int, float]) -> list[float]:
        scores = list(self.bias)
        weights = self.weights
        for i, x in vec.items():
            w = weights.get(i)
            if w is not None:
                for k in range(len(scores)):
                    scores[k] += w[k] * x
        return scores

    @classmethod
    def train(cls, examples: Sequence[tuple[Prompt, int]], how: Training = Training()) -> TierModel:
        """Fit on (prompt, tier) pairs: AdaGrad on the cross-entropy with an L2 penalty, in a
        seeded order, so the same examples give the same model."""
        n = len(TIERS)
        data = [(features(p), TIERS.index(tier)) for p, tier in examples]
        weights: dict[int, list[float]] = {}
        sums: dict[int, list[float]] = {}
        bias, bias_sums = [0.0] * n, [1e-8] * n
        order = list(range(len(data)))
        rng = random.Random(how.seed)
        model = cls(weights, bias)
        for _ in range(how.epochs):
            rng.shuffle(order)
            for j in order:
                vec, label = data[j]
                probs = _softmax(model._scores(vec))
                for k in range(n):
                    g = probs[k] - (k == label)
                    bias_sums[k] += g * g
                    bias[k] -= how.rate * g / math.sqrt(bias_sums[k])
                    for i, x in vec.items():
                        w = weights.setdefault(i, [0.0] * n)
                        acc = sums.setdefault(i, [1e-8] * n)
                        gi = g * x + how.l2 * w[k]
                        acc[k] += gi * gi
                        w[k] -= how.rate * gi / math.sqrt(acc[k])
        return model

    def save(self, path: Path = MODEL_FILE) -> None:
        body = {
            "meta": self.meta,
            "bias": [round(b, 5) for b in self.bias],
            "weights": {
                str(i): [round(x, 5) for x in w]
                for i, w in sorted(self.weights.items())
                if any(abs(x) >= 5e-5 for x in w)
            },
        }
        path.write_text(json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> TierModel:
        body = json.loads(path.read_text())
        weights = {int(i): [float(x) for x in w] for i, w in body["weights"].items()}
        return cls(weights, [float(b) for b in body["bias"]], body.get("meta", {}))


@cache
def shipped() -> TierModel:
    """The model shipped in the package (loaded once)."""
    return TierModel.load()


def most_likely(probs: list[float]) -> int:
    return TIERS[max(range(len(TIERS)), key=probs.__getitem__)]


def floor(probs: list[float], caution: float = CAUTION) -> int:
    return next((t for i, t in enumerate(TIERS) if sum(probs[i + 1 :]) < caution), TIERS[-1])


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]
