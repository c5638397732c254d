"""Named SQL queries, read once from ``sql/queries/*.sql``.

A file holds blocks that each start with a ``-- name: <query_name>`` line
followed by comment lines that say why, then the statement with ``$n``
parameters. Values are never formatted into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
QUERIES_DIR = SQL_DIR / "queries"

_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse_queries(text: str, source: str = "<string>") -> dict[str, str]:
    parts = _BLOCK.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        statement = body.strip()
        if not statement or all(line.startswith("--") for line in statement.splitlines()):
            raise ValueError(f"{source}: query {name!r} has no statement")
        if name in queries:
            raise ValueError(f"{source}: query {name!r} is defined twice")
        queries[name] = statement
    return queries


def load_queries(directory: Path = QUERIES_DIR) -> Mapping[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, statement in parse_queries(path.read_text("utf-8"), str(path)).items():
            if name in queries:
                raise ValueError(f"{path}: query {name!r} is already defined in another file")
            queries[name] = statement
    return MappingProxyType(queries)


# Read-only after import, like procrastinate's `queries`.
QUERIES: Mapping[str, str] = load_queries()
