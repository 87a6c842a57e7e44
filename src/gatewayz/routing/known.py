"""What resolution may ask of the model catalog (SPEC §3 with §9), without importing it.

The weak rules of resolution (resolve.py step 4: a provider serving the `{org}/`, an aggregator
serving any `{org}/{model}`) only guess that a provider serves a name. Once the catalog has
synced, the gateway knows what the served providers list, so a guess must be backed: the
provider lists the model (a catalog offer) or prices it (its row in the price book). `services.py`
hands the Resolver a callable returning the current `KnownModels` (the catalog's, see
catalog/known.py); a new object means the knowledge changed, and the Resolver drops its cache.

`Suggestions` finds the names closest to an unknown one ("Did you mean"). A catalog holds
10,000+ names, so a request never compares its name with all of them: a trigram index picks the
`POOL` names sharing the most trigrams with it, and only those are ranked exactly (difflib's
ratio). The cost is bounded by the name's length (model names are at most 256 characters) and
the index's posting lists, whatever the request; each answer is cached with the explanation
that carries it (resolve.py), until the knowledge changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from difflib import SequenceMatcher
from typing import Protocol

SUGGESTIONS = 3  # "Did you mean: a, b, c?"
POOL = 64  # names ranked exactly per unknown name (those sharing the most trigrams with it)
CUTOFF = 0.6  # the least similarity (difflib ratio) a suggestion has


class KnownModels(Protocol):
    """The served providers' model lists and prices, as routing needs them."""

    @property
    def synced(self) -> bool:
        """Whether the lists come from the providers' APIs (a sync succeeded); before that the
        catalog only knows the pricing data, and the weak rules are not checked."""
        ...

    def offers(self, provider: str, model: str, native_id: str) -> bool:
        """Whether `provider` lists `model` (by canonical id or by its native id) or prices it."""
        ...

    def suggest(self, name: str) -> tuple[str, ...]:
        """The served names closest to `name`, best first."""
        ...


def nothing_known() -> KnownModels | None:
    """The default: no catalog (resolution as the routing data alone decides)."""
    return None


def _grams(text: str) -> set[str]:
    padded = f"^{text}$"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


class Suggestions:
    """The names closest to a name, through a trigram index (see the module docstring). Names
    map to the model they name (an alias to its canonical id): of several names of one model,
    only the closest is suggested."""

    def __init__(self, names: Mapping[str, str] | Iterable[str], limit: int = SUGGESTIONS) -> None:
        targets = dict(names) if isinstance(names, Mapping) else {n: n for n in names}
        self.names = sorted(targets)
        self._targets = [targets[n] for n in self.names]
        self.limit = limit
        self.compared = 0  # names ranked exactly by the last `suggest` (bounded by POOL)
        self._keys = [n.lower() for n in self.names]
        index: dict[str, list[int]] = {}
        for i, key in enumerate(self._keys):
            for gram in _grams(key):
                index.setdefault(gram, []).append(i)
        self._index = index

    def suggest(self, name: str) -> tuple[str, ...]:
        key = name.lower()
        shared: Counter[int] = Counter()
        for gram in _grams(key):
            shared.update(self._index.get(gram, ()))
        pool = [i for i, _ in shared.most_common(POOL)]
        self.compared = len(pool)
        matcher = SequenceMatcher(None, b=key, autojunk=False)
        scored = []
        for i in pool:
            if self.names[i] == name:
                continue
            matcher.set_seq1(self._keys[i])
            if matcher.real_quick_ratio() >= CUTOFF and matcher.quick_ratio() >= CUTOFF:
                ratio = matcher.ratio()
                if ratio >= CUTOFF:
                    scored.append((-ratio, self.names[i], self._targets[i]))
        scored.sort()
        chosen: dict[str, str] = {}  # model → its closest name
        for _, found, target in scored:
            chosen.setdefault(target, found)
        return tuple(chosen.values())[: self.limit]
