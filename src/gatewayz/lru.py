"""`LRU[K, V]`: a mapping that forgets its least recently used entries beyond its bounds.

* Bounds: `max_entries` (None: no bound on the count) and `max_bytes` (None: none), the bytes
  of a value measured by `size(value)` once, when it is stored (`size` may be given without
  `max_bytes`, to keep count of `bytes`).
* `get` makes the entry the most recent; `peek`, `in` and `len` leave the order alone.
* `put` stores the value as the most recent, then evicts from the least recent end while a
  bound is exceeded — the new entry included, so a value bigger than `max_bytes` on its own is
  not kept. `evictions` counts the entries evicted (not those `pop`ped or `clear`ed).
* Iteration (`iter`, `items`) runs from the least recently used entry, the next to be evicted,
  to the most recent. A caller with its own eviction rule reads the oldest from there.

One `OrderedDict` underneath: a hit is one lookup and one `move_to_end`, a store one
assignment and one `move_to_end`. No lock and nothing awaited: each call is atomic with
respect to the other tasks of the event loop. Expiry is the callers' business (their values
carry their deadlines), as are the statistics they keep beyond `evictions`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, ItemsView, Iterator
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

_MISSING: Any = object()


class LRU(Generic[K, V]):
    __slots__ = ("_data", "_sizes", "bytes", "evictions", "max_bytes", "max_entries", "size")

    def __init__(
        self,
        max_entries: int | None = None,
        *,
        max_bytes: int | None = None,
        size: Callable[[V], int] | None = None,
    ) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        if max_bytes is not None and size is None:
            raise ValueError("max_bytes needs a size function")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = size
        self.bytes = 0  # the sizes of the stored values, when `size` is given
        self.evictions = 0
        self._data: OrderedDict[K, V] = OrderedDict()
        self._sizes: dict[K, int] = {}  # each stored value's size, when `size` is given

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[K]:
        """The keys, least recently used first."""
        return iter(self._data)

    def items(self) -> ItemsView[K, V]:
        """(key, value) pairs, least recently used first."""
        return self._data.items()

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...
    def get(self, key: K, default: Any = None) -> Any:
        """The value under `key`, now the most recently used; `default` if there is none."""
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return default
        self._data.move_to_end(key)
        return value

    @overload
    def peek(self, key: K) -> V | None: ...
    @overload
    def peek(self, key: K, default: D) -> V | D: ...
    def peek(self, key: K, default: Any = None) -> Any:
        """The value under `key`, its place in the order unchanged; `default` if there is none."""
        return self._data.get(key, default)

    def put(self, key: K, value: V) -> None:
        """Store `value` under `key` as the most recently used; evict beyond the bounds."""
        data = self._data
        data[key] = value
        data.move_to_end(key)
        if self.size is not None:
            size = self.size(value)
            self.bytes += size - self._sizes.get(key, 0)
            self._sizes[key] = size
        if (self.max_entries is not None and len(data) > self.max_entries) or (
            self.max_bytes is not None and self.bytes > self.max_bytes
        ):
            self._evict()

    @overload
    def pop(self, key: K) -> V | None: ...
    @overload
    def pop(self, key: K, default: D) -> V | D: ...
    def pop(self, key: K, default: Any = None) -> Any:
        """Remove the entry under `key`; its value, or `default` if there was none."""
        value = self._data.pop(key, _MISSING)
        if value is _MISSING:
            return default
        if self.size is not None:
            self.bytes -= self._sizes.pop(key)
        return value

    def clear(self) -> None:
        self._data.clear()
        self._sizes.clear()
        self.bytes = 0

    def _evict(self) -> None:
        data = self._data
        while data and (
            (self.max_entries is not None and len(data) > self.max_entries)
            or (self.max_bytes is not None and self.bytes > self.max_bytes)
        ):
            key, _ = data.popitem(last=False)
            if self.size is not None:
                self.bytes -= self._sizes.pop(key)
            self.evictions += 1
