"""The only code that touches SQL. Functions take a connection; callers own transactions."""

from __future__ import annotations

import ipaddress
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


async def fetch_page(
    conn: Connection,
    *,
    list_query: str,
    find_query: str,
    where: str | None,
    order: str,
    params: list[Any],
) -> tuple[int, list[asyncpg.Record]]:
    """Run a page query: `list_query` when unfiltered, else `find_query` with the
    compiler's filter in place of its /*filter*/ markers. Returns (total, rows)."""
    if where is None:
        sql = QUERIES[list_query].replace("/*order*/", order)
    else:
        sql = QUERIES[find_query].replace("/*filter*/", f"({where})").replace("/*order*/", order)
    rows = await conn.fetch(sql, *params)
    total = int(rows[0]["total"]) if rows else 0
    return total, [r for r in rows if r["id"] is not None]
