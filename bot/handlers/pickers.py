"""The unit picker: drill down the tree with buttons, a page at a time (25 provinces, ~200
districts). Callback data carries only ids: ``<browse>:<node>:<page>`` and ``<choose>:<unit>``."""

from __future__ import annotations

from html import escape

from bot.domain.outbox import Buttons
from bot.domain.units import UnitService
from bot.i18n import _
from bot.inputs import BUTTON_ID_MAX, parse_number

PAGE = 8
ROOT = 0  # node id 0 means "the top of the tree"


async def unit_picker(
    units: UnitService, node: int, page: int, browse: str, choose: str, *, internal_only: bool,
) -> tuple[str, Buttons]:
    """Text and buttons listing the children of ``node``; units with children open with ›."""
    parent = await units.by_id(node) if node != ROOT else None
    children = await units.children(parent.id if parent else None)
    if internal_only:
        children = [u for u in children if u.kind != "external"]
    if parent is None and len(children) == 1 and children[0].n_children:
        # One ministry at the top: open it at once, one tap fewer.
        parent, node = children[0], children[0].id
        children = await units.children(parent.id)
        if internal_only:
            children = [u for u in children if u.kind != "external"]
    pages = max(1, -(-len(children) // PAGE))
    page = min(max(page, 0), pages - 1)
    rows: Buttons = []
    if parent is not None:
        rows.append([(_("✓ {unit}").format(unit=parent.name), f"{choose}:{parent.id}")])
    for u in children[page * PAGE:(page + 1) * PAGE]:
        if u.n_children:
            rows.append([(f"{u.name} ›", f"{browse}:{u.id}:0")])
        else:
            rows.append([(u.name, f"{choose}:{u.id}")])
    nav: list[tuple[str, str]] = []
    if parent is not None and parent.parent_id is not None:
        nav.append((_("‹ Up"), f"{browse}:{parent.parent_id}:0"))
    if page > 0:
        nav.append((_("◀ Prev"), f"{browse}:{node}:{page - 1}"))
    if page < pages - 1:
        nav.append((_("Next ▶"), f"{browse}:{node}:{page + 1}"))
    if nav:
        rows.append(nav)
    where = escape(parent.name) if parent else _("top level")
    text = _("Choose a unit ({where}, page {page}/{pages}). Units with › have units under them.")
    return text.format(where=where, page=page + 1, pages=pages), rows


def parse_ids(data: str, count: int) -> list[int] | None:
    """The ``count`` integer fields after the prefix of a callback, or None when forged or
    malformed: the bot writes them in ASCII digits, within BUTTON_ID_MAX."""
    parts = data.split(":")[1:]
    if len(parts) != count:
        return None
    ids = [parse_number(p, maximum=BUTTON_ID_MAX, khmer=False) for p in parts]
    return None if None in ids else [i for i in ids if i is not None]
