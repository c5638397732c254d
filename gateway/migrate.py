"""Plain-SQL migrations from ``sql/migrations/NNNN_name.sql``, applied in order.

All pending files run in one transaction under an advisory lock, so two
processes starting at once apply them exactly once. Each applied file is
recorded with its SHA-256 in ``schema_migrations``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from gateway.dbtypes import Connection
from gateway.sql import MIGRATIONS_DIR

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# An arbitrary constant: "scim-gateway migrations" as a bigint key.
_LOCK_KEY = 0x5C1A_6A7E_0001

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The database and the code disagree about the schema."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lowercase_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text("utf-8")))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migration numbers must run 1, 2, 3… without gaps, found {versions}")
    return migrations


async def applied_versions(conn: Connection) -> dict[int, str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, sha256 FROM schema_migrations ORDER BY version")
    return {row["version"]: row["sha256"] for row in rows}


def _check_history(applied: dict[int, str], migrations: list[Migration]) -> None:
    known = {m.version: m for m in migrations}
    ahead = sorted(v for v in applied if v not in known)
    if ahead:
        raise MigrationError(
            f"the database has migration {ahead[-1]} but this code only knows up to "
            f"{len(migrations)}: it was migrated by a newer version of the gateway. "
            "Run that version, or restore a backup taken before it."
        )
    for version, digest in applied.items():
        if known[version].sha256 != digest:
            raise MigrationError(
                f"migration {version:04d}_{known[version].name}.sql was changed after it was "
                "applied; add a new migration instead of editing an applied one"
            )


async def migrate(conn: Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply every pending migration; return the versions applied (empty when none)."""
    migrations = load_migrations() if migrations is None else migrations
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_CREATE_TABLE)
        applied = await applied_versions(conn)
        _check_history(applied, migrations)
        done = []
        for migration in migrations:
            if migration.version in applied:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.sha256,
            )
            done.append(migration.version)
        return done


async def check_schema(conn: Connection, migrations: list[Migration] | None = None) -> None:
    """Refuse to serve on a database that is behind or ahead of the code."""
    migrations = load_migrations() if migrations is None else migrations
    applied = await applied_versions(conn)
    _check_history(applied, migrations)
    pending = [m.version for m in migrations if m.version not in applied]
    if pending:
        raise MigrationError(
            f"the database lacks migrations {pending}: run `python -m gateway migrate` first"
        )
