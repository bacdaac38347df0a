"""What public figures may show: no unit ranked on a handful of cases, no small count that can
be read off the page, nor worked out from the totals.

- **Pooling** (``pool``): a province or a category with fewer than ``MIN_RANKED`` cases is not
  shown on its own but in a pooled row ("others"). A pool that would still single one out (a
  single member, or fewer than ``MIN_RANKED`` cases together) takes in the smallest of the others
  until it does not, so that subtracting the other rows from the total never gives one unit.
- **Small counts** (``protect``): a count from 1 to ``SMALL - 1`` is shown as ``<5``. Since each
  column adds up to a total that can be known (the rows by month give it, or the same column of
  another table), a column with hidden counts hides more (complementary suppression): the
  smallest other counts, shown as ``<5`` when under 5 (a 0 too) and as ``x`` otherwise, until
  every count hidden as ``<5`` could be at least two different numbers given the total and
  everything shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

SMALL = 5          # counts under this are hidden in public figures
MIN_RANKED = 10    # no unit or category is shown on its own with fewer cases than this
HIDDEN_SMALL = f"<{SMALL}"
HIDDEN = "x"       # a count of SMALL or more, hidden so that a small one cannot be worked out

T = TypeVar("T")


def pool(groups: dict[str, list[T]], size: Callable[[list[T]], int] = len,
         minimum: int = MIN_RANKED) -> tuple[list[tuple[str, list[T]]], list[str], list[T]]:
    """The groups shown on their own (by key), the keys pooled and the pooled members. The pool
    is empty, or has at least two groups and ``minimum`` cases, or holds every group (then it is
    the total, which singles out nobody)."""
    ranked = sorted(groups.items(), key=lambda kv: (size(kv[1]), kv[0]))
    pooled = [(k, v) for k, v in ranked if size(v) < minimum]
    shown = [(k, v) for k, v in ranked if size(v) >= minimum]
    while pooled and shown and (len(pooled) < 2 or sum(size(v) for _k, v in pooled) < minimum):
        pooled.append(shown.pop(0))  # the smallest of those shown
    members = [m for _k, v in pooled for m in v]
    return sorted(shown), sorted(k for k, _v in pooled), members


def suppress(count: int) -> int | str:
    """A count as shown on its own: under SMALL (but not 0) as "<5"."""
    return HIDDEN_SMALL if 0 < count < SMALL else count


def _bounds(value: int) -> tuple[int, float]:
    """What a reader knows of a hidden count from its mark."""
    return (0, SMALL - 1) if value < SMALL else (SMALL, float("inf"))


def recoverable(values: Sequence[int], hidden: set[int]) -> list[int]:
    """The hidden small counts (indexes) that the column's total and the shown counts pin down
    to one number."""
    total = sum(values[i] for i in hidden)
    bounds = {i: _bounds(values[i]) for i in hidden}
    lo_sum = sum(b[0] for b in bounds.values())
    hi_sum = sum(b[1] for b in bounds.values())
    found = []
    for i in hidden:
        if not 0 < values[i] < SMALL:
            continue
        lo_i, hi_i = bounds[i]
        low = max(lo_i, total - (hi_sum - hi_i))
        high = min(hi_i, total - (lo_sum - lo_i))
        if high - low < 1:
            found.append(i)
    return found


def protect(rows: list[dict[str, object]], columns: Sequence[str]) -> None:
    """In place: each column's small counts hidden, and as many others as it takes (see the
    module's docstring). Cells that are not whole numbers are left as they are."""
    for column in columns:
        cells = [i for i, r in enumerate(rows) if isinstance(r.get(column), int)
                 and not isinstance(r.get(column), bool)]
        values = {i: int(str(rows[i][column])) for i in cells}
        hidden = {i for i in cells if 0 < values[i] < SMALL}
        if not hidden:
            continue
        index = sorted(cells)
        vector = [values.get(i, 0) for i in range(len(rows))]
        while recoverable(vector, hidden):
            rest = [i for i in index if i not in hidden]
            if not rest:
                break  # one row: its count is the total, known anyway
            hidden.add(min(rest, key=lambda i: (values[i], i)))
        for i in hidden:
            rows[i][column] = HIDDEN_SMALL if values[i] < SMALL else HIDDEN
