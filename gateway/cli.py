"""The `scim-gateway` command line (also `python -m gateway`)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import json
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import uvloop

from dashboard.security import digest, hash_password, new_secret, password_problem
from gateway.app import create_app
from gateway.db import is_transient
from gateway.dbtypes import Connection
from gateway.embedded import start_embedded_postgres
from gateway.logs import configure_logging
from gateway.migrate import MigrationError, check_schema, migrate
from gateway.provlog.codes import CODES
from gateway.provlog.events import EVENTS
from gateway.provlog.guidance import guidance_for_log
from gateway.provlog.signals import app_kind, org_signals
from gateway.server import serve
from gateway.settings import Settings, SettingsError
from gateway.store import admins as admin_store
from gateway.store import orgs as org_store
from gateway.store import provisioning_log as log_store
from gateway.store import tokens as token_store
from gateway.tokens import display_token
from gateway.workers import WorkersError, run_workers


class CliError(Exception):
    """A failure to report in one line, without a traceback."""


def _database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url
    return start_embedded_postgres(settings.data_dir)


@asynccontextmanager
async def _connect(settings: Settings, *, check: bool = True) -> AsyncIterator[Connection]:
    conn = await asyncpg.connect(_database_url(settings), timeout=settings.db_connect_timeout)
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


MAX_TOKEN_DAYS = 730


def token_lifetime(args: argparse.Namespace, settings: Settings) -> timedelta | None:
    """The lifetime `tokens create` gives: --expires-days, the default, or none with --no-expiry."""
    if args.no_expiry:
        if args.expires_days is not None:
            raise CliError("--no-expiry and --expires-days exclude each other")
        return None
    days = args.expires_days if args.expires_days is not None else settings.token_expiry_days
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise CliError(
            f"--expires-days must be between 1 and {MAX_TOKEN_DAYS}; for a token that never "
            "expires, say --no-expiry"
        )
    return timedelta(days=days)


async def cmd_tokens_create(settings: Settings, args: argparse.Namespace) -> None:
    expires = token_lifetime(args, settings)
    async with _connect(settings) as conn:
        org = await _require_org(conn, args.org)
        try:
            token, info = await token_store.create_token(
                conn,
                org.id,
                expires_in=expires,
                note=args.note,
                max_active=settings.max_active_tokens,
            )
        except token_store.TooManyTokens as exc:
            held = "; ".join(
                f"{t.id} ({display_token(t.last4)}, created {_when(t.created_at)}, last used "
                f"{_when(t.last_used_at)})"
                for t in exc.active
            )
            raise CliError(
                f"org {org.slug} already has {len(exc.active)} active tokens, the most allowed "
                f"(MAX_ACTIVE_TOKENS_PER_ORG={settings.max_active_tokens}): {held}. To rotate, "
                "revoke the one Okta no longer uses with `scim-gateway tokens revoke TOKEN_ID`, "
                "then create the new one."
            ) from None
    until = f"; it expires {_when(info.expires_at)}" if info.expires_at else "; it never expires"
    print(
        f"Created SCIM token {info.id} for {org.slug}{until}. It is shown only once, below.",
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


_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str) -> timedelta:
    match = _SINCE.match(text.strip())
    if match is None:
        raise CliError(f"--since takes a duration like 90s, 30m, 1h or 7d, not {text!r}")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _log_record(row: log_store.LogRow, app_kind: str | None) -> dict[str, Any]:
    guidance = guidance_for_log(row, app_kind=app_kind)
    target = None
    if row.target_type:
        target = {
            "type": row.target_type,
            "id": str(row.target_id) if row.target_id else None,
            "name": row.target_name,
            "display": row.target_display,
        }
    return {
        "time": row.occurred_at.isoformat().replace("+00:00", "Z"),
        "event": row.event,
        "event_detail": row.event_detail,
        "outcome": row.outcome,
        "code": row.code,
        "code_args": row.code_args,
        "unresolved": row.unresolved,
        "status": row.status,
        "method": row.method,
        "path": row.path,
        "target": target,
        "reason": row.reason,
        "guidance": guidance.as_dict() if guidance else None,
        "request_id": row.request_id,
        "job": str(row.job_id) if row.job_id else None,
    }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def cmd_logs(settings: Settings, args: argparse.Namespace) -> None:
    since = datetime.now(UTC) - parse_since(args.since) if args.since else None
    outcome = args.outcome.lower() if args.outcome else None
    if outcome not in (None, "success", "failure", "warning"):
        raise CliError("--outcome is success, failure or warning")
    event = None
    if args.event:
        event = next((e for e in EVENTS if e.lower() == args.event.lower()), None)
        if event is None:
            raise CliError(f"no event {args.event!r}; events: {', '.join(EVENTS)}")
    if args.code and args.code not in CODES:
        raise CliError(f"no code {args.code!r}; codes: {', '.join(CODES)}")
    job_id = None
    if args.job:
        try:
            job_id = uuid.UUID(args.job)
        except ValueError:
            raise CliError(f"--job takes a job id as `jobs` shows it, not {args.job!r}") from None
    if args.unattributed and (args.org or args.unresolved):
        raise CliError("--unattributed lists rows of no org: use it without --org/--unresolved")
    if not args.unattributed and not args.org:
        raise CliError("--org SLUG is required (or --unattributed for rows of no org)")
    where = log_store.LogFilter(
        since=since,
        outcome=outcome,
        event=event,
        code=args.code,
        job_id=job_id,
        target=args.target,
        unresolved=args.unresolved,
    )
    async with _connect(settings) as conn:
        org_id, kind = None, None
        if not args.unattributed:
            org = await _require_org(conn, args.org)
            org_id, kind = org.id, await app_kind(conn, org.id)
        rows, _ = await log_store.list_log(conn, org_id, where, limit=args.limit)
    if args.json:
        for row in rows:
            print(json.dumps(_log_record(row, kind), ensure_ascii=False))
        return
    table = [["TIME", "EVENT", "OUTCOME", "STATUS", "TARGET", "CODE", "REASON / DETAIL"]]
    for row in rows:
        event_text = row.event + (
            f" ({row.event_detail})" if row.event_detail and row.outcome != "warning" else ""
        )
        outcome_text = row.outcome.capitalize()
        if row.outcome == "failure" and row.unresolved is False:
            outcome_text += " (resolved)"
        table.append(
            [
                _when(row.occurred_at),
                event_text,
                outcome_text,
                str(row.status),
                row.target_name or "",
                row.code or "",
                row.reason or (row.event_detail if row.outcome == "warning" else "") or "",
            ]
        )
        guidance = guidance_for_log(row, app_kind=kind)
        if guidance is not None:
            table.append(["", "  → fix first:", "", "", "", "", guidance.fix_first])
    print(_table(table))


async def cmd_jobs(settings: Settings, args: argparse.Namespace) -> None:
    async with _connect(settings) as conn:
        org = await _require_org(conn, args.org)
        jobs = await log_store.list_jobs(conn, org.id, limit=args.limit)
    now = datetime.now(UTC)
    if args.json:
        for job in jobs:
            print(
                json.dumps(
                    {
                        "job": str(job.job_id),
                        "state": job.state(now),
                        "first_sync": job.first_sync,
                        "start": _iso(job.started_at),
                        "end": _iso(job.ended_at),
                        "duration_seconds": round(job.duration_seconds, 3),
                        "requests": job.requests,
                        "users": job.users,
                        "teams": job.teams,
                        "success": job.successes,
                        "failure": job.failures,
                        "warning": job.warnings,
                        "resolved": job.resolved,
                        "unresolved": job.unresolved,
                        "events": job.counts,
                    }
                )
            )
        return
    table = [
        ["JOB", "STATE", "START", "DURATION", "REQUESTS", "USERS", "TEAMS", "FAILURES",
         "RESOLVED", "WARNINGS", ""]
    ]  # fmt: skip
    for job in jobs:
        table.append(
            [
                str(job.job_id),
                job.state(now),
                _when(job.started_at),
                f"{job.duration_seconds:.1f}s",
                str(job.requests),
                str(job.users),
                str(job.teams),
                str(job.failures),
                str(job.resolved),
                str(job.warnings),
                "first sync" if job.first_sync else "",
            ]
        )
    print(_table(table))


async def cmd_signals(settings: Settings, args: argparse.Namespace) -> None:
    async with _connect(settings) as conn:
        org = await _require_org(conn, args.org)
        found = await org_signals(conn, org.id, days=args.days)
    if args.json:
        for signal in found:
            print(json.dumps(dataclasses.asdict(signal), ensure_ascii=False))
        return
    if not found:
        print(f"no misconfiguration signals for {org.slug} in the last {args.days} days")
    for signal in found:
        print(f"- [{signal.kind}] {signal.message} ({signal.count})")
        for example in signal.examples:
            print(f"    e.g. {example}")


def _read_new_password() -> str:
    """From a prompt (asked twice) on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise CliError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problem = password_problem(password)
    if problem is not None:
        raise CliError(f"password refused: {problem}")
    return password


async def cmd_admins_create(settings: Settings, args: argparse.Namespace) -> None:
    if "@" not in args.email:
        raise CliError(f"{args.email!r} is not an email address")
    password_hash = await hash_password(_read_new_password())
    async with _connect(settings) as conn:
        org = await _require_org(conn, args.org)
        try:
            admin = await admin_store.create_admin(conn, org.id, args.email, password_hash)
        except admin_store.AdminExists:
            raise CliError(f"an admin with email {args.email!r} already exists") from None
    print(
        f"created admin {admin.email} of {org.slug}; sign in at {settings.public_origin}/dashboard/"
    )


async def cmd_admins_list(settings: Settings, args: argparse.Namespace) -> None:
    async with _connect(settings) as conn:
        org_id = (await _require_org(conn, args.org)).id if args.org else None
        admins = await admin_store.list_admins(conn, org_id)
    rows = [["ORG", "EMAIL", "CREATED", "LAST SIGN-IN", "DISABLED"]]
    rows += [
        [
            a.org_slug or "",
            a.email,
            _when(a.created_at),
            _when(a.last_sign_in_at),
            _when(a.disabled_at),
        ]
        for a in admins
    ]
    print(_table(rows))


async def cmd_admins_disable(settings: Settings, args: argparse.Namespace) -> None:
    async with _connect(settings) as conn:
        admin = await admin_store.disable_admin(conn, args.email)
    if admin is None:
        raise CliError(f"no admin with email {args.email!r}")
    print(f"disabled admin {admin.email}; their sessions have ended")


async def _setup_link(conn: Connection, settings: Settings) -> str | None:
    """On an install without admins, a new one-time code for the first-run setup page."""
    if await admin_store.any_admin(conn):
        return None
    code = new_secret()
    await admin_store.add_setup_code(conn, digest(code))
    return f"{settings.public_origin}/dashboard/setup?code={code}"


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    settings = replace(settings, host=args.host or settings.host)
    settings = replace(settings, port=args.port if args.port is not None else settings.port)
    settings = replace(settings, database_url=_database_url(settings))

    async def preflight() -> tuple[bool | None, str | None]:
        """Whether an org exists and the setup link; None when the database does not answer yet."""
        try:
            async with _connect(settings) as conn:
                return bool(await org_store.list_orgs(conn)), await _setup_link(conn, settings)
        except Exception as exc:
            if not is_transient(exc):
                raise  # e.g. not migrated: refuse to start
            return None, None

    has_orgs, setup_link = asyncio.run(preflight())
    print(f"SCIM base URL (paste into Okta): {settings.scim_base_url}", file=sys.stderr)
    print(f"Dashboard: {settings.public_origin}/dashboard/", file=sys.stderr)
    if has_orgs is None:
        print(
            "The database does not answer yet; serving anyway: /readyz answers 503 and SCIM "
            "requests 503 with Retry-After until it does.",
            file=sys.stderr,
        )
    elif setup_link is not None:
        print(
            "No dashboard admin yet. Open this one-time link to create the first org and admin "
            f"(it works once; it is shown only here):\n  {setup_link}",
            file=sys.stderr,
        )
    elif not has_orgs:
        print(
            "No org yet. In another shell:\n"
            "  python -m gateway orgs create acme\n"
            "  TOKEN=$(python -m gateway tokens create --org acme)\n"
            f'  curl -H "Authorization: Bearer $TOKEN" {settings.scim_base_url}/ServiceProviderConfig',
            file=sys.stderr,
        )
    configure_logging()
    workers = args.workers or settings.workers or os.cpu_count() or 1
    if settings.metrics_listen is not None:
        host, port = settings.metrics_listen
        print(f"Metrics: http://{host}:{port}/metrics (METRICS_LISTEN)", file=sys.stderr)
    if workers == 1:
        uvloop.run(serve(create_app(settings), settings))
        return
    try:
        status = run_workers(settings, workers)
    except WorkersError as exc:
        raise CliError(str(exc)) from None
    if status:
        raise CliError("the workers stopped; see the log above")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scim-gateway",
        description=(
            "The SecureCodingHub SCIM gateway. Settings come from the environment "
            "(DATABASE_URL, DATABASE_READ_URL, GATEWAY_DATA_DIR, SCIM_BASE_PATH, PUBLIC_BASE_URL, "
            "…; see README). "
            "Without DATABASE_URL every command uses the embedded PostgreSQL in GATEWAY_DATA_DIR."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve SCIM, the dashboard, health and metrics over HTTP",
        description="Serve the gateway. Refuses to start on a database that is not migrated exactly "
        "to this version; starts without a database that does not answer yet (/readyz 503 until "
        "it does). On SIGTERM: /readyz 503 for SHUTDOWN_DRAIN_SECONDS, then requests in flight "
        "finish (SHUTDOWN_TIMEOUT_SECONDS), then the pool closes.",
    )
    serve.add_argument("--host", help="address to listen on (default: GATEWAY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: GATEWAY_PORT or 8080)")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes, dealt connections in turn by a supervisor (default: "
        "GATEWAY_WORKERS or one per CPU core); SIGTERM stops them all gracefully. Each worker has its own database pool, per-token rate "
        "limits and org shares: N workers open up to N x DB_POOL_MAX_SIZE connections, and a "
        "client whose connections reach several workers may get up to N x its rate",
    )
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
        "so TOKEN=$(scim-gateway tokens create --org acme) works; it cannot be shown again. "
        "Tokens expire after 365 days unless told otherwise; an org holds at most two active "
        "tokens (MAX_ACTIVE_TOKENS_PER_ORG), enough to rotate: create, paste into Okta, revoke "
        "the old one.",
    )
    tok_create.add_argument(
        "--org", required=True, metavar="SLUG", help="the org the token acts for"
    )
    tok_create.add_argument(
        "--expires-days",
        type=int,
        metavar="N",
        help=f"expire after N days, 1 to {MAX_TOKEN_DAYS} (default: TOKEN_EXPIRY_DAYS, 365)",
    )
    tok_create.add_argument(
        "--no-expiry",
        action="store_true",
        help="a token that never expires (only when asked for explicitly)",
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
        description="Revoke a token; its requests get 401 within AUTH_CACHE_MS (500 ms) on every worker.",
    )
    tok_revoke.add_argument("token_id", metavar="TOKEN_ID", help="the id shown by `tokens list`")
    tok_revoke.set_defaults(run=cmd_tokens_revoke)

    admins = commands.add_parser(
        "admins",
        help="create, list and disable dashboard admins",
        description="Create, list and disable the org admins who sign in to the dashboard.",
    )
    admin_commands = admins.add_subparsers(dest="admins_command", required=True, metavar="ACTION")
    adm_create = admin_commands.add_parser(
        "create",
        help="create an admin; the password is read from a prompt or stdin",
        description="Create a dashboard admin of an org. The password (at least 12 characters) is "
        "asked twice on a terminal, else read from the first line of stdin; it is stored as an "
        "argon2id hash only.",
    )
    adm_create.add_argument("--org", required=True, metavar="SLUG")
    adm_create.add_argument(
        "--email", required=True, metavar="EMAIL", help="what they sign in with"
    )
    adm_create.set_defaults(run=cmd_admins_create)
    adm_list = admin_commands.add_parser(
        "list", help="list admins", description="List dashboard admins (of one org with --org)."
    )
    adm_list.add_argument("--org", metavar="SLUG")
    adm_list.set_defaults(run=cmd_admins_list)
    adm_disable = admin_commands.add_parser(
        "disable",
        help="disable an admin and end their sessions",
        description="Disable a dashboard admin: they can no longer sign in, and their open "
        "sessions end at once.",
    )
    adm_disable.add_argument("email", metavar="EMAIL")
    adm_disable.set_defaults(run=cmd_admins_disable)

    logs = commands.add_parser(
        "logs",
        help="an org's provisioning log, newest first",
        description="An org's provisioning log, newest first: event, outcome, status, target, "
        "code and reason, with what to fix first for each failure. --json prints one object per "
        "line (time, event, outcome, code, code_args, unresolved, status, method, path, target, "
        "reason, guidance, request_id, job).",
    )
    logs.add_argument("--org", metavar="SLUG", help="the org (required unless --unattributed)")
    logs.add_argument(
        "--since", metavar="DURATION", help="only the last DURATION, e.g. 30m, 1h, 7d"
    )
    logs.add_argument("--outcome", metavar="OUTCOME", help="success, failure or warning")
    logs.add_argument(
        "--event", metavar="NAME", help='e.g. "Create user" (see the README for all events)'
    )
    logs.add_argument(
        "--limit", type=int, default=50, metavar="N", help="at most N rows (default 50)"
    )
    logs.add_argument(
        "--target", metavar="TEXT", help="a userName, team name or id; NAME* for names starting so"
    )
    logs.add_argument("--job", metavar="ID", help="one sync job (ids as `jobs` shows them)")
    logs.add_argument(
        "--code", metavar="CODE", help="one reason code, e.g. missing_attribute (see the README)"
    )
    logs.add_argument(
        "--unresolved", action="store_true", help="only failures no later success resolved"
    )
    logs.add_argument(
        "--unattributed",
        action="store_true",
        help="rows no org could be found for (no or unknown token), for operators",
    )
    logs.add_argument("--json", action="store_true", help="one JSON object per line")
    logs.set_defaults(run=cmd_logs)

    jobs = commands.add_parser(
        "jobs",
        help="an org's sync jobs with their counts",
        description="An org's sync jobs (requests of one token less than five minutes apart), newest "
        "first: state (running, stalled: quiet with failures pending, finished), start, "
        "duration, requests, users and teams touched, failures, resolved and warnings; the "
        "org's first sync (its first job that created users or pushed teams) is marked.",
    )
    jobs.add_argument("--org", required=True, metavar="SLUG")
    jobs.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N jobs (default 20)"
    )
    jobs.add_argument(
        "--json", action="store_true", help="one JSON object per line, with counts per event"
    )
    jobs.set_defaults(run=cmd_jobs)

    signals = commands.add_parser(
        "signals",
        help="what the traffic and data say about an org's Okta setup",
        description="Misconfiguration signals for an org: which Okta app kind is calling (PUT vs "
        "PATCH), userNames that are Okta ids or not emails, wrong base URLs, revoked tokens still "
        "in use, Okta spec-test users left behind, and likely duplicate accounts.",
    )
    signals.add_argument("--org", required=True, metavar="SLUG")
    signals.add_argument(
        "--days", type=int, default=30, metavar="N", help="look at the last N days (default 30)"
    )
    signals.add_argument("--json", action="store_true", help="one JSON object per line")
    signals.set_defaults(run=cmd_signals)
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
