"""The routers' data (`candidates.toml`): the models each router may pick, with their benchmark
score, model tier and the source of the figure; the latency to assume for a model without live
data. Checked when loaded: tiers 1–4, and within a router a higher tier never has a lower
score (so a harder task never gets a weaker model)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

CANDIDATES_FILE = Path(__file__).with_name("candidates.toml")
SCORE_KEY = {"general": "score", "code": "swe_bench"}


@dataclass(frozen=True, slots=True)
class Candidate:
    model: str  # canonical id
    score: float  # on the router's benchmark
    tier: int  # 1 (small) … 4 (frontier)
    source: str


@dataclass(frozen=True)
class RouterData:
    candidates: dict[str, tuple[Candidate, ...]]  # router kind → its models, best score first
    latency_prior_ms: dict[int, float]
    benchmarks: dict[str, str]  # router kind → the benchmark its scores come from
    updated: date | None = None

    def prior_ms(self, tier: int) -> float:
        return self.latency_prior_ms.get(tier, max(self.latency_prior_ms.values(), default=1e3))

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> RouterData:
        meta = raw.get("meta", {})
        candidates = {kind: _candidates(kind, raw.get(kind, {})) for kind in SCORE_KEY}
        prior = {int(t): float(ms) for t, ms in raw.get("latency_prior_ms", {}).items()}
        updated = meta.get("updated")
        return cls(
            candidates,
            prior,
            {
                "general": str(meta.get("general_benchmark", "")),
                "code": str(meta.get("code_benchmark", "")),
            },
            updated if isinstance(updated, date) else None,
        )


def _candidates(kind: str, rows: dict[str, Any]) -> tuple[Candidate, ...]:
    out = []
    for model, row in rows.items():
        tier = int(row["tier"])
        if tier not in (1, 2, 3, 4):
            raise ValueError(f"{kind}.{model}: tier {tier} is not 1–4")
        out.append(Candidate(model, float(row[SCORE_KEY[kind]]), tier, str(row.get("source", ""))))
    out.sort(key=lambda c: (-c.score, c.model))
    for hi in out:
        for lo in out:
            if hi.tier > lo.tier and hi.score < lo.score:
                raise ValueError(
                    f"{kind}: {hi.model} (tier {hi.tier}) scores below {lo.model} (tier {lo.tier})"
                )
    return tuple(out)


@cache
def shipped() -> RouterData:
    return RouterData.from_mapping(tomllib.loads(CANDIDATES_FILE.read_text()))
