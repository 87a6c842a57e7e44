"""`gatewayz.lru.LRU`: bounded by entries and by bytes, least recently used out first."""

from __future__ import annotations

import pytest

from gatewayz.lru import LRU


def test_get_and_peek() -> None:
    lru: LRU[str, int] = LRU(3)
    lru.put("a", 1)
    assert lru.get("a") == 1 and lru.peek("a") == 1
    assert lru.get("x") is None and lru.get("x", 0) == 0
    assert lru.peek("x") is None and lru.peek("x", -1) == -1
    assert "a" in lru and "x" not in lru and len(lru) == 1


def test_beyond_max_entries_the_least_recently_used_goes() -> None:
    lru: LRU[str, int] = LRU(3)
    for i, key in enumerate("abc"):
        lru.put(key, i)
    assert lru.get("a") == 0  # now the most recent: b is the oldest
    lru.put("d", 3)
    assert list(lru) == ["c", "a", "d"] and lru.evictions == 1
    assert lru.peek("b") is None


def test_peek_and_contains_leave_the_order_alone() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.peek("a") == 1 and "a" in lru
    lru.put("c", 3)
    assert list(lru) == ["b", "c"]


def test_put_over_an_existing_key_replaces_it_and_makes_it_the_most_recent() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.put("a", 10)
    assert list(lru.items()) == [("b", 2), ("a", 10)] and lru.evictions == 0
    lru.put("c", 3)
    assert list(lru) == ["a", "c"]


def test_bounded_by_bytes() -> None:
    lru: LRU[int, bytes] = LRU(10, max_bytes=25, size=len)
    for i in range(3):
        lru.put(i, b"x" * 10)
    assert list(lru) == [1, 2] and lru.bytes == 20 and lru.evictions == 1
    lru.put(1, b"x" * 3)  # replaced: its old size is forgotten
    assert lru.bytes == 13 and list(lru) == [2, 1]
    assert lru.pop(2) == b"x" * 10 and lru.bytes == 3
    lru.put(9, b"y" * 30)  # too big on its own: kept by nobody
    assert len(lru) == 0 and lru.bytes == 0 and 9 not in lru


def test_both_bounds_at_once() -> None:
    lru: LRU[int, bytes] = LRU(3, max_bytes=25, size=len)
    for i in range(5):
        lru.put(i, b"x" * 11)
    assert len(lru) == 2 and lru.bytes == 22  # 3 entries would be 33 bytes > 25
    assert list(lru) == [3, 4]


def test_unbounded_and_a_callers_own_eviction() -> None:
    lru: LRU[str, list[int]] = LRU()
    for key in "abcd":
        lru.put(key, [1, 2])
    lru.get("a")
    oldest_key, oldest = next(iter(lru.items()))
    assert oldest_key == "b" and oldest == [1, 2] and len(lru) == 4


def test_pop_and_clear() -> None:
    lru: LRU[str, bytes] = LRU(5, size=len)
    lru.put("a", b"12")
    lru.put("b", b"345")
    assert lru.pop("a") == b"12" and lru.pop("a") is None and lru.pop("a", b"") == b""
    assert lru.bytes == 3 and lru.evictions == 0
    lru.clear()
    assert len(lru) == 0 and lru.bytes == 0 and list(lru) == []
    lru.put("c", b"6")
    assert lru.bytes == 1


def test_bad_bounds() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        LRU(0)
    with pytest.raises(ValueError, match="size"):
        LRU(10, max_bytes=100)
