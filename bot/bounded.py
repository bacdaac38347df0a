"""A dict with a maximum size, for the in-memory maps that grow with people and chats.

Every such map in the bot is a cache or a courtesy (a person's language, their grants, their
flood allowance): forgetting an entry costs one database read or a fresh allowance, never a
wrong answer. So each is bounded by a size, and the least recently used entry goes first."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import ItemsView, Iterator, MutableMapping, ValuesView
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

# More people and chats than a ministry's working group, its units and their groups count; at a
# few hundred bytes an entry, each map stays within a few MB.
MAX_ENTRIES = 10_000


class LRUDict(MutableMapping[K, V]):
    """At most ``maxsize`` entries; reading or writing one makes it the most recent, and a new
    entry beyond the bound pushes out the least recent."""

    def __init__(self, maxsize: int = MAX_ENTRIES) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __delitem__(self, key: K) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data  # a membership test does not count as a use

    def items(self) -> ItemsView[K, V]:
        return self._data.items()  # going through them is not a use (nor a change while iterating)

    def values(self) -> ValuesView[V]:
        return self._data.values()

    def clear(self) -> None:
        self._data.clear()

    def __repr__(self) -> str:
        return f"LRUDict(maxsize={self.maxsize}, {dict(self._data)!r})"
