"""The `scim-gateway` command line (also `python -m gateway`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web

from gateway.app import create_app
from gateway.dbtypes import Connection
from gateway.embedded import start_embedded_postgres
from gateway.migrate import MigrationError, check_schema, migrate
from gateway.settings import Settings, SettingsError
from gateway.store import orgs as org_store
from gateway.store import tokens as token_store
from gateway.tokens import display_token


class CliError(Exception):
    """A failure to report in one line, without a traceback."""


def _database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url
    return start_embedded_postgres(settings.data_dir)


@asynccontextmanager
async def _connect(settings: Settings, *, check: bool = True) -> AsyncIterator[Connection]:
    conn = await asyncpg.connect(_database_url(settings))
    try:
        if check:
            await check_schema(conn)
        yield conn
    finally:
        await conn.close()


async def _require_org(conn: Connection, slug: str) -> org_store.Org:
    org = await org_store.get_org_by_slug(conn, slug)
    if org is None:
        raise CliError(f"no org {slug!r}; create it with: scim-gateway orgs create {slug}")
    return org


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    async with _connect(settings, check=False) as conn:
        applied = await migrate(conn)
    if applied:
        print(f"applied migrations {', '.join(f'{v:04d}' for v in applied)}", file=sys.stderr)
    else:
        print("database is up to date", file=sys.stderr)


async def cmd_orgs_create(settings: Settings, args: argparse.Namespace) -> None:
    async with _connect(settings) as conn:
        try:
            org = await org_store.create_org(conn, args.slug, args.name)
        except org_store.OrgExists:
            raise CliError(f"org {args.slug!r} already exists") from None
        except ValueError as exc:
            raise CliError(str(exc)) from None
    print(f"created org {org.slug} ({org.id})")


async def cmd_orgs_list(settings: Settings, args: argparse.Namespace) -> None:
    async with _connect(settings) as conn:
        summaries = await org_store.list_orgs(conn)
    rows = [["SLUG", "NAME", "ID", "CREATED", "ACTIVE TOKENS"]]
    rows += [
        [s.org.slug, s.org.name, str(s.org.id), _when(s.org.created_at), str(s.active_tokens)]
        for s in summaries
    ]
    print(_table(rows))


async def cmd_tokens_create(settings: Settings, args: argparse.Namespace) -> None:
    if args.expires_days is not None and args.expires_days < 1:
        raise CliError("--expires-days must be at least 1")
    async with _connect(settings) as conn:
        org = await _require_org(conn, args.org)
        expires = timedelta(days=args.expires_days) if args.expires_days else None
        token, info = await token_store.create_token(
            conn, org.id, expires_in=expires, note=args.note
        )
    print(
        f"Created SCIM token {info.id} for {org.slug}; it is shown only once, below.",
        file=sys.stderr,
    )
    # Only the token on stdout, so that TOKEN=$(scim-gateway tokens create ...) works.
    sys.stdout.write(token + "\n")


async def cmd_tokens_list(settings: Settings, args: argparse.Namespace) -> None:
    async with _connect(settings) as conn:
        org = await _require_org(conn, args.org)
        tokens = await token_store.list_tokens(conn, org.id)
    rows = [["ID", "TOKEN", "CREATED", "LAST USED", "EXPIRES", "REVOKED", "NOTE"]]
    rows += [
        [
            str(t.id),
            display_token(t.last4),
            _when(t.created_at),
            _when(t.last_used_at),
            _when(t.expires_at),
            _when(t.revoked_at),
            t.note or "",
        ]
        for t in tokens
    ]
    print(_table(rows))


async def cmd_tokens_revoke(settings: Settings, args: argparse.Namespace) -> None:
    try:
        token_id = uuid.UUID(args.token_id)
    except ValueError:
        raise CliError(
            f"{args.token_id!r} is not a token id; `tokens list --org SLUG` shows them"
        ) from None
    async with _connect(settings) as conn:
        info = await token_store.revoke_token(conn, token_id)
    if info is None:
        raise CliError(f"no token with id {token_id}")
    print(f"revoked token {info.id} ({display_token(info.last4)}) at {_when(info.revoked_at)}")


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    settings = replace(settings, host=args.host or settings.host)
    settings = replace(settings, port=args.port if args.port is not None else settings.port)
    settings = replace(settings, database_url=_database_url(settings))

    async def preflight() -> bool:
        async with _connect(settings) as conn:
            return bool(await org_store.list_orgs(conn))

    has_orgs = asyncio.run(preflight())
    print(f"SCIM base URL (paste into Okta): {settings.scim_base_url}", file=sys.stderr)
    if not has_orgs:
        print(
            "No org yet. In another shell:\n"
            "  python -m gateway orgs create acme\n"
            "  TOKEN=$(python -m gateway tokens create --org acme)\n"
            f'  curl -H "Authorization: Bearer $TOKEN" {settings.scim_base_url}/ServiceProviderConfig',
            file=sys.stderr,
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scim-gateway",
        description=(
            "The SecureCodingHub SCIM gateway. Settings come from the environment "
            "(DATABASE_URL, GATEWAY_DATA_DIR, SCIM_BASE_PATH, PUBLIC_BASE_URL, …; see README). "
            "Without DATABASE_URL every command uses the embedded PostgreSQL in GATEWAY_DATA_DIR."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve SCIM, health and metrics over HTTP",
        description="Serve the gateway. Refuses to start on a database that is not migrated exactly to this version.",
    )
    serve.add_argument("--host", help="address to listen on (default: GATEWAY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: GATEWAY_PORT or 8080)")
    serve.set_defaults(run=cmd_serve, sync=True)

    mig = commands.add_parser(
        "migrate",
        help="apply pending database migrations",
        description="Apply pending migrations from sql/migrations in one transaction; a no-op when up to date.",
    )
    mig.set_defaults(run=cmd_migrate)

    orgs = commands.add_parser(
        "orgs", help="create and list orgs", description="Create and list orgs."
    )
    org_commands = orgs.add_subparsers(dest="orgs_command", required=True, metavar="ACTION")
    org_create = org_commands.add_parser(
        "create", help="create an org", description="Create an org."
    )
    org_create.add_argument("slug", help="lowercase letters, digits and '-', e.g. acme")
    org_create.add_argument("--name", help="display name (default: the slug)")
    org_create.set_defaults(run=cmd_orgs_create)
    org_list = org_commands.add_parser(
        "list", help="list orgs", description="List orgs with their active token counts."
    )
    org_list.set_defaults(run=cmd_orgs_list)

    tokens = commands.add_parser(
        "tokens",
        help="create, list and revoke SCIM tokens",
        description="Create, list and revoke SCIM tokens.",
    )
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    tok_create = token_commands.add_parser(
        "create",
        help="create a token and print it (only it) on stdout",
        description="Create a SCIM token for an org. The token is printed once, alone on stdout, "
        "so TOKEN=$(scim-gateway tokens create --org acme) works; it cannot be shown again.",
    )
    tok_create.add_argument(
        "--org", required=True, metavar="SLUG", help="the org the token acts for"
    )
    tok_create.add_argument(
        "--expires-days", type=int, metavar="N", help="expire after N days (default: never)"
    )
    tok_create.add_argument("--note", metavar="TEXT", help="a note, e.g. which Okta app uses it")
    tok_create.set_defaults(run=cmd_tokens_create)
    tok_list = token_commands.add_parser(
        "list",
        help="list an org's tokens (never the tokens themselves)",
        description="List an org's tokens: id, prefix…last 4, created, last used, expires, revoked.",
    )
    tok_list.add_argument("--org", required=True, metavar="SLUG")
    tok_list.set_defaults(run=cmd_tokens_list)
    tok_revoke = token_commands.add_parser(
        "revoke",
        help="revoke a token by id",
        description="Revoke a token; its next request gets 401.",
    )
    tok_revoke.add_argument("token_id", metavar="TOKEN_ID", help="the id shown by `tokens list`")
    tok_revoke.set_defaults(run=cmd_tokens_revoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if getattr(args, "sync", False):
            args.run(settings, args)
        else:
            asyncio.run(args.run(settings, args))
    except (CliError, SettingsError, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: cannot use the database: {exc}", file=sys.stderr)
        return 1
    return 0
