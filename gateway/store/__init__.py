"""The only code that touches SQL. Functions take a connection; callers own transactions."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.dbtypes import Connection
from gateway.sql import QUERIES


def parse_ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address for an `inet` column; None for anything that is not one (e.g. a Unix socket)."""
    if not value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class PageRows:
    """A page's rows, the total matching, and whether it continued a walk by keyset."""

    total: int
    rows: list[asyncpg.Record]
    by_keyset: bool


def _page_queries() -> dict[str, str]:
    """The page queries, with the position fragments of sql/queries/paging.sql in place."""

    def fragment(name: str) -> str:
        return re.sub(r"(?m)^--.*\n", "", QUERIES[name]).strip()

    position, note = fragment("page_position"), fragment("note_page_position")
    return {
        name: QUERIES[name]
        .replace("/*page_position*/", position)
        .replace("/*note_page_position*/", note)
        for name in ("list_users", "find_users", "list_groups", "find_groups")
    }


PAGE_QUERIES = _page_queries()


async def fetch_page(
    conn: Connection,
    *,
    list_query: str,
    find_query: str,
    where: str | None,
    order: str,
    params: list[Any],
) -> PageRows:
    """Run a page query: `list_query` when unfiltered, else `find_query` with the
    compiler's filter in place of its /*filter*/ markers. The statement also notes
    where the walk's next page starts (scim_page_positions), so it writes."""
    if where is None:
        sql = PAGE_QUERIES[list_query].replace("/*order*/", order)
    else:
        sql = (
            PAGE_QUERIES[find_query].replace("/*filter*/", f"({where})").replace("/*order*/", order)
        )
    rows = await conn.fetch(sql, *params)
    return PageRows(
        total=int(rows[0]["total"]) if rows else 0,
        rows=[r for r in rows if r["id"] is not None],
        by_keyset=bool(rows and rows[0]["by_keyset"]),
    )


async def delete_expired_page_positions(conn: Connection) -> int:
    """Forget where walks that nobody continued in time would have gone on."""
    status = await conn.execute(QUERIES["delete_expired_page_positions"])
    return int(status.split()[-1])
