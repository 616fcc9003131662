"""The memory repository's sorted indexes (tasks by status, by due time), with removal
in O(1).

A removal from a sorted Python list moves every entry after it: the PENDING tasks leave
their indexes from the front (oldest first), so with 20,000 of them waiting each claim
moved two lists of 20,000 pointers (~4 µs each, growing with the backlog). Here a
removed key is only marked: readers skip it, the marked keys at the front are dropped
as the first live key is looked up, and the list is rebuilt without them once they are
half of it (one pass, amortised O(1) a removal).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=tuple[Any, ...])


class SortedKeys(Generic[K]):
    def __init__(self) -> None:
        self._keys: list[K] = []
        self._gone: set[K] = set()
        """Keys removed but still in ``_keys``, in their place."""

    def __len__(self) -> int:
        return len(self._keys) - len(self._gone)

    def add(self, key: K) -> None:
        if key in self._gone:  # removed, still in place: live again
            self._gone.discard(key)
            return
        keys = self._keys
        if not keys or keys[-1] < key:  # the usual: a new task, the latest yet
            keys.append(key)
        else:
            bisect.insort(keys, key)

    def remove(self, key: K) -> None:
        """``key`` must be in the index."""
        self._gone.add(key)
        if len(self._gone) * 2 > len(self._keys):
            gone = self._gone
            self._keys = [k for k in self._keys if k not in gone]
            gone.clear()

    def move(self, before: K | None, after: K | None) -> None:
        """A key that went from ``before`` to ``after`` (None: not in the index)."""
        if before == after:
            return
        if before is not None:
            self.remove(before)
        if after is not None:
            self.add(after)

    def first(self) -> K | None:
        """The smallest live key (the removed ones before it are dropped on the way)."""
        keys, gone = self._keys, self._gone
        dropped = 0
        while dropped < len(keys) and keys[dropped] in gone:
            gone.discard(keys[dropped])
            dropped += 1
        if dropped:
            del keys[:dropped]
        return keys[0] if keys else None

    def ascending(self) -> Iterator[K]:
        """The live keys, smallest first."""
        gone = self._gone
        return (key for key in self._keys if key not in gone)

    def page_before(self, bound: K | None, limit: int) -> tuple[list[K], bool]:
        """Up to ``limit`` live keys below ``bound`` (None: all), largest first, and
        whether any live key is left below the last of them."""
        keys, gone = self._keys, self._gone
        position = len(keys) if bound is None else bisect.bisect_left(keys, bound)
        page: list[K] = []
        while position > 0:
            position -= 1
            key = keys[position]
            if key in gone:
                continue
            if len(page) == limit:
                return page, True
            page.append(key)
        return page, False
