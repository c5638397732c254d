"""The only code that touches SQL. Functions take a connection; callers own transactions."""

from __future__ import annotations

import ipaddress
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
    """A page's rows, the total matching, whether it continued a walk by keyset, and
    (unfiltered lists) the org's count of inserts and deletes of the type."""

    total: int
    rows: list[asyncpg.Record]
    by_keyset: bool
    changes: int | None


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
    compiler's filter in place of its /*filter*/ markers."""
    if where is None:
        sql = QUERIES[list_query].replace("/*order*/", order)
    else:
        sql = QUERIES[find_query].replace("/*filter*/", f"({where})").replace("/*order*/", order)
    rows = await conn.fetch(sql, *params)
    return PageRows(
        total=int(rows[0]["total"]) if rows else 0,
        rows=[r for r in rows if r["id"] is not None],
        by_keyset=bool(rows and rows[0]["by_keyset"]),
        changes=rows[0]["changes"] if rows else None,
    )
