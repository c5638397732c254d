"""The schema is ready for Citus with org_id as the distribution column.

Checked on a database migrated by sql/migrations and on the named queries of
sql/queries (as the store runs them, fragments in place):

- every table is either distributed by org_id (org_id NOT NULL, and its primary
  key and every unique index lead with org_id, and its foreign keys point at a
  reference table or lead with org_id on both sides), or one of the reference
  tables named below (and in README "Scaling out"), or the migrator's own table;
- every statement that reads or writes a distributed table pins each of its
  references to one org: `alias.org_id` equal to a parameter or a constant, or to
  the org_id of another reference that is, or of a CTE or subquery (whose own
  references are checked in turn) — a router query in Citus's words — and an
  INSERT names org_id. The statements that span orgs on purpose are listed with
  the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import asyncpg
import pytest

from gateway.scim.filters import Params, compile_filter
from gateway.scim.groups import GROUP_FILTERS
from gateway.scim.users import USER_FILTERS
from gateway.sql import QUERIES
from gateway.store import PAGE_QUERIES
from gateway.store.provisioning_log import LOG_READS

README = Path(__file__).resolve().parent.parent / "README.md"

# Small, read by a global key before the org is known, or global by nature: copied
# to every node (create_reference_table).
REFERENCE_TABLES = {
    "orgs": "the tenants themselves; every distributed table's org_id points here",
    "scim_tokens": "a request is authenticated by the token's digest before its org is known",
    "dashboard_admins": "an admin signs in by email before the org is known",
    "dashboard_sessions": "a session is found by its cookie's digest",
    "dashboard_setup_codes": "first-run codes exist before any org",
    "dashboard_signin_failures": "sign-in throttling by email and client address, across orgs",
}
# Stays on the coordinator.
LOCAL_TABLES = {"schema_migrations": "the migrator's own record"}

# Fragments that the store puts inside other statements (checked there).
FRAGMENTS = {
    "page_position": "inside list_users, find_users, list_groups, find_groups",
    "note_page_position": "inside list_users, find_users, list_groups, find_groups",
    "log_row_columns": "inside the log's reads",
    "log_row_unresolved": "inside the log's reads",
}
# Statements over distributed tables that span orgs on purpose (multi-shard in Citus).
CROSS_ORG = {
    "monitoring_fleet_state": "the metrics scrape's fleet totals (every 15 s at most)",
    "monitoring_org_state": "the metrics scrape's top orgs by users (METRICS_ORG_LABEL=1)",
    "delete_expired_page_positions": "hourly upkeep under the advisory lock",
}

_KEYWORDS = {
    "as", "on", "where", "set", "join", "left", "right", "inner", "cross", "full", "group",
    "order", "limit", "offset", "values", "select", "using", "returning", "with", "union",
    "lateral", "natural", "outer", "for", "having", "window", "and", "or", "default",
}  # fmt: skip
_REFERENCE = re.compile(
    r"\b(from|join|into|update|using)\s+([a-z_][a-z0-9_]*)(?:\s+(?:as\s+)?([a-z_][a-z0-9_]*))?"
)
_ORG_TERM = r"(?:[a-z_][a-z0-9_]*\.)?org_id|\$\d+(?:::[a-z]+)?|'[^']*'(?:::[a-z]+)?"
_EQUALITY = re.compile(rf"({_ORG_TERM})\s*=\s*({_ORG_TERM})")


def statements() -> dict[str, str]:
    """Every named statement as the store sends it (fragments in place), and the page
    queries with filters on memberships (the compiler's EXISTS over other tables)."""
    found = {name: sql for name, sql in QUERIES.items() if name not in FRAGMENTS}
    found.update(PAGE_QUERIES)
    found.update(LOG_READS)
    for name, target, filter_text in (
        ("find_users", USER_FILTERS, 'groups[display sw "eng"] or groups.value pr'),
        ("find_groups", GROUP_FILTERS, 'members[value eq "x"] or members.display co "a"'),
    ):
        where = compile_filter(filter_text, target, Params([None] * 5))
        found[f"{name} ({filter_text})"] = PAGE_QUERIES[name].replace("/*filter*/", where)
    return found


def _bare(sql: str) -> str:
    """Lower case, without comments; string literals kept (they are constants)."""
    return re.sub(r"--[^\n]*", "", sql).lower()


def _term(text: str) -> str:
    if text.startswith(("$", "'")):
        return "constant"
    return text


def unpinned_references(sql: str, distributed: set[str], tables: set[str]) -> list[str]:
    """The references to distributed tables that the statement does not pin to one org
    (`tables`: every table, distributed or not)."""
    text = _bare(sql)
    references = []
    for match in _REFERENCE.finditer(text):
        verb, table, alias = match.groups()
        if table in tables:
            name = table if alias is None or alias in _KEYWORDS else alias
            references.append((verb, table, name, text[match.end(2) :]))
    parent: dict[str, str] = {}

    def find(term: str) -> str:
        while parent.setdefault(term, term) != term:
            term = parent[term]
        return term

    for left, right in _EQUALITY.findall(text):
        parent[find(_term(left))] = find(_term(right))
    # The org_id of a CTE or subquery comes from the references inside it, which are
    # checked themselves.
    names = {name for _, _, name, _ in references}
    for derived in set(re.findall(r"\b([a-z_][a-z0-9_]*)\.org_id\b", text)) - names:
        parent[find(f"{derived}.org_id")] = find("constant")
    pinned = find("constant")
    unpinned = []
    for verb, table, name, rest in references:
        if table not in distributed:
            continue
        if verb == "into":
            columns = re.match(r"\s*(?:as\s+[a-z_]+\s*)?\(([^)]*)\)", rest)
            if columns is None or "org_id" not in re.split(r"\s*,\s*", columns[1].strip()):
                unpinned.append(f"INSERT INTO {table} without org_id")
            continue
        terms = {f"{name}.org_id"} | ({"org_id"} if name == table else set())
        if not any(find(t) == pinned for t in terms):
            unpinned.append(f"{table} {name}")
    return unpinned


async def _tables(db: asyncpg.Connection) -> set[str]:
    rows = await db.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    )
    return {r["relname"] for r in rows}


def _readme_tables(heading: str) -> set[str]:
    """The names in backquotes in the bullet `heading` of README's "Scaling out"."""
    section = README.read_text("utf-8").split("\n## Scaling out\n", 1)[1]
    bullet = section.split("\n" + heading, 1)[1].split("\n- ", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", bullet))


@pytest.fixture
async def tables(database_url: str) -> set[str]:
    db = await asyncpg.connect(database_url)
    try:
        return await _tables(db)
    finally:
        await db.close()


@pytest.fixture
def distributed(tables: set[str]) -> set[str]:
    return tables - set(REFERENCE_TABLES) - set(LOCAL_TABLES)


async def test_distributed_tables_lead_every_key_with_org_id(
    database_url: str, distributed: set[str]
) -> None:
    db = await asyncpg.connect(database_url)
    try:
        assert set(REFERENCE_TABLES) | set(LOCAL_TABLES) <= await _tables(db)
        nullable = await db.fetch(
            "SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname = ANY($1) AND a.attname = 'org_id' AND a.attnotnull",
            sorted(distributed),
        )
        assert {r["relname"] for r in nullable} == distributed, "org_id missing or nullable"
        keys = await db.fetch(
            """
            SELECT c.relname, i.indexrelid::regclass::text AS index, i.indisprimary,
                   (SELECT attname FROM pg_attribute
                     WHERE attrelid = c.oid AND attnum = i.indkey[0]) AS first_column
            FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
            WHERE c.relname = ANY($1) AND i.indisunique
            """,
            sorted(distributed),
        )
        assert {r["relname"] for r in keys if r["indisprimary"]} == distributed, "no primary key"
        assert [(r["relname"], r["index"]) for r in keys if r["first_column"] != "org_id"] == []
        foreign = await db.fetch(
            """
            SELECT c.relname, f.relname AS target,
                   (SELECT attname FROM pg_attribute WHERE attrelid = k.conrelid
                     AND attnum = k.conkey[1]) AS first_column,
                   (SELECT attname FROM pg_attribute WHERE attrelid = k.confrelid
                     AND attnum = k.confkey[1]) AS first_target_column
            FROM pg_constraint k
            JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class f ON f.oid = k.confrelid
            WHERE k.contype = 'f' AND c.relname = ANY($1)
            """,
            sorted(distributed),
        )
        assert [
            dict(r)
            for r in foreign
            if r["target"] not in REFERENCE_TABLES
            and (r["first_column"], r["first_target_column"]) != ("org_id", "org_id")
        ] == []
    finally:
        await db.close()


def test_readme_names_the_same_reference_tables(distributed: set[str]) -> None:
    assert _readme_tables("- **Reference tables**") == set(REFERENCE_TABLES)
    assert _readme_tables("- **Distributed by `org_id`**") - {"org_id"} == distributed


def test_every_statement_pins_its_distributed_tables_to_one_org(
    tables: set[str], distributed: set[str]
) -> None:
    found = {
        name: unpinned
        for name, sql in statements().items()
        if (unpinned := unpinned_references(sql, distributed, tables))
    }
    assert set(found) == set(CROSS_ORG), found


def _unpinned(sql: str) -> list[str]:
    distributed = {"scim_users", "scim_groups", "scim_group_members"}
    return unpinned_references(sql, distributed, distributed | {"orgs"})


@pytest.mark.parametrize(
    ("sql", "unpinned"),
    [
        ("SELECT id FROM scim_users WHERE org_id = $1", []),
        ("SELECT id FROM scim_users u WHERE u.org_id = $2::uuid AND u.id = $1", []),
        ("SELECT count(*) FROM scim_users WHERE active IS FALSE", ["scim_users scim_users"]),
        # Joined on org_id to a pinned reference: pinned; joined on anything else: not.
        (
            "SELECT 1 FROM scim_group_members m JOIN scim_users u ON u.org_id = m.org_id "
            "WHERE m.org_id = $1",
            [],
        ),
        (
            "SELECT 1 FROM scim_group_members m JOIN scim_users u ON u.id = m.user_id "
            "WHERE m.org_id = $1",
            ["scim_users u"],
        ),
        ("SELECT 1 FROM scim_users u WHERE u.org_id = 'x' -- org_id = $1", []),
        # Through a CTE whose own reference is pinned; not through a reference table.
        (
            "WITH p AS (SELECT org_id, id FROM scim_users WHERE org_id = $1) "
            "SELECT 1 FROM p JOIN scim_groups g ON g.org_id = p.org_id",
            [],
        ),
        (
            "SELECT 1 FROM orgs o JOIN scim_groups g ON g.org_id = o.id WHERE o.slug = $1",
            ["scim_groups g"],
        ),
        ("SELECT 1 FROM scim_users u -- WHERE u.org_id = $1", ["scim_users u"]),
        ("INSERT INTO scim_groups (org_id, id) VALUES ($1, $2)", []),
        (
            "INSERT INTO scim_groups AS g (id) VALUES ($2)",
            ["INSERT INTO scim_groups without org_id"],
        ),
        ("UPDATE scim_users SET active = false WHERE id = $1", ["scim_users scim_users"]),
    ],
)
def test_the_check_tells_pinned_from_unpinned(sql: str, unpinned: Iterable[str]) -> None:
    assert _unpinned(sql) == list(unpinned)
