"""Settings read from the environment, once, at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_SCIM_BASE_PATH = "/api/sch/scim/v2"
DEFAULT_METRICS_LISTEN = "127.0.0.1:9464"
# A bearer token short enough to guess is no protection.
MIN_METRICS_TOKEN_LENGTH = 16


class SettingsError(ValueError):
    """An environment variable holds a value the gateway cannot use."""


def _int(
    environ: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int,
    maximum: int | None = None,
) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")
    return value


def _listen(raw: str) -> tuple[str, int] | None:
    """`METRICS_LISTEN`: HOST:PORT (IPv6 in brackets), or `off`."""
    text = raw.strip()
    if text.lower() in ("off", "none", "no", "0"):
        return None
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(
            f"METRICS_LISTEN must be HOST:PORT (e.g. 127.0.0.1:9464) or off, got {raw!r}"
        )
    return host, int(port)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


def _base_path(raw: str) -> str:
    path = "/" + raw.strip().strip("/")
    if path == "/" or "//" in path or any(c in path for c in "?#{} "):
        raise SettingsError(f"SCIM_BASE_PATH must look like /api/sch/scim/v2, got {raw!r}")
    return path


def _metrics_token(environ: Mapping[str, str]) -> str | None:
    token = environ.get("METRICS_TOKEN", "").strip()
    if not token:
        return None
    if len(token) < MIN_METRICS_TOKEN_LENGTH:
        raise SettingsError(
            f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters "
            "(e.g. from `openssl rand -hex 32`)"
        )
    return token


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the gateway reads from its environment.

    `database_url` is None when the gateway should run its own embedded
    PostgreSQL in `data_dir`. `repr()` hides the database URLs, which may carry a
    password.
    """

    database_url: str | None = field(default=None, repr=False)
    # A read replica for the dashboard's read-only pages; None: they read the primary.
    database_read_url: str | None = field(default=None, repr=False)
    data_dir: Path = Path("var")
    scim_base_path: str = DEFAULT_SCIM_BASE_PATH
    public_base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # Per worker process: `serve --workers N` opens up to N times as many connections.
    db_pool_min_size: int = 2
    db_pool_max_size: int = 10
    # Okta's largest bodies are AIW group PUTs with every member; 100,000 members
    # at about 90 bytes each fit in 16 MiB.
    max_body_bytes: int = 16 * 1024 * 1024
    log_body_limit: int = 16 * 1024
    token_touch_seconds: int = 60
    # How long one process reuses a token's authentication (0: never): a revoke
    # refuses the token on every worker and replica within this time.
    auth_cache_seconds: float = 0.5
    log_retention_days: int = 90
    # Where /metrics answers without a token: a listener of its own (None: none).
    metrics_listen: tuple[str, int] | None = None
    # When set, /metrics also answers on the main port, to `Authorization: Bearer <it>`.
    metrics_token: str | None = field(default=None, repr=False)
    # None: metrics are fleet-wide; N: an `org` label for at most N orgs per process.
    metrics_org_limit: int | None = None
    # prometheus-client's multiprocess directory; set by `serve --workers N` for its workers.
    metrics_multiproc_dir: Path | None = None
    # Worker processes for `serve` (None: one per CPU core).
    workers: int | None = None
    # Dashboard sessions end after this long without a request, and this long after sign-in.
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    # Failed sign-ins allowed per account and per client address within the window.
    signin_window_minutes: int = 15
    signin_max_per_account: int = 5
    signin_max_per_ip: int = 30
    # Provisioning-log rows kept on local disk while the database is away.
    log_spool_max_bytes: int = 64 * 1024 * 1024
    # `tokens create` without --expires-days; at most 730 (the CLI's ceiling).
    token_expiry_days: int = 365
    # Active (unrevoked, unexpired) tokens an org may hold: two allow a rotation.
    max_active_tokens: int = 2
    # Reliability (README "Reliability"). Times in seconds unless the name says ms.
    db_connect_timeout: float = 5.0
    db_acquire_timeout: float = 2.0
    db_statement_timeout_ms: int = 30_000
    db_lock_timeout_ms: int = 5_000
    # How often a gateway without its database checks whether it is back.
    db_retry_interval: float = 0.5
    # Retry-After of a 503 (database away or busy, no capacity).
    retry_after_seconds: int = 5
    # From connecting (or the previous response) to a request's complete headers.
    header_timeout: float = 10.0
    # To receive a whole request body.
    body_timeout: float = 10.0
    # Per token and per worker process (README "Several workers": a client whose
    # connections reach N workers may get up to N times this): sustained requests
    # per second, and the burst above it.
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100
    # Share of a worker's pool one org may hold at once in that worker.
    org_pool_share_percent: int = 50
    # Requests waiting for a connection slot in a worker beyond this are answered 503 at once.
    max_queued_requests: int = 100
    # SIGTERM: /readyz answers 503 this long while serving, then in-flight
    # requests get at most shutdown_timeout to finish.
    shutdown_drain_seconds: float = 5.0
    shutdown_timeout: float = 20.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        pool_min = _int(env, "DB_POOL_MIN_SIZE", 2, minimum=0)
        pool_max = _int(env, "DB_POOL_MAX_SIZE", 10, minimum=1)
        if pool_max < pool_min:
            raise SettingsError(
                f"DB_POOL_MAX_SIZE ({pool_max}) must not be below DB_POOL_MIN_SIZE ({pool_min})"
            )
        public = env.get("PUBLIC_BASE_URL", "").strip().rstrip("/") or None
        if public is not None and not public.startswith(("http://", "https://")):
            raise SettingsError(
                f"PUBLIC_BASE_URL must start with https:// (or http:// for local use), got {public!r}"
            )
        database_url = env.get("DATABASE_URL", "").strip() or None
        database_read_url = env.get("DATABASE_READ_URL", "").strip() or None
        if database_read_url is not None and database_url is None:
            raise SettingsError(
                "DATABASE_READ_URL (a read replica) needs DATABASE_URL (its primary); "
                "the embedded PostgreSQL has no replica"
            )
        return cls(
            database_url=database_url,
            database_read_url=database_read_url,
            data_dir=Path(env.get("GATEWAY_DATA_DIR", "").strip() or "var"),
            scim_base_path=_base_path(env.get("SCIM_BASE_PATH", DEFAULT_SCIM_BASE_PATH)),
            public_base_url=public,
            host=env.get("GATEWAY_HOST", "").strip() or "127.0.0.1",
            port=_int(env, "GATEWAY_PORT", 8080, minimum=0),
            db_pool_min_size=pool_min,
            db_pool_max_size=pool_max,
            max_body_bytes=_int(env, "SCIM_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024),
            log_body_limit=_int(env, "LOG_BODY_LIMIT_BYTES", 16 * 1024, minimum=256),
            log_retention_days=_int(env, "LOG_RETENTION_DAYS", 90, minimum=1),
            metrics_listen=_listen(env.get("METRICS_LISTEN", "") or DEFAULT_METRICS_LISTEN),
            metrics_token=_metrics_token(env),
            metrics_org_limit=(
                _int(env, "METRICS_ORG_LIMIT", 50, minimum=1)
                if _flag(env, "METRICS_ORG_LABEL")
                else None
            ),
            metrics_multiproc_dir=(
                Path(env["PROMETHEUS_MULTIPROC_DIR"])
                if env.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
                else None
            ),
            workers=_int(env, "GATEWAY_WORKERS", 0, minimum=0) or None,
            session_idle_minutes=_int(env, "DASHBOARD_SESSION_IDLE_MINUTES", 30, minimum=1),
            session_max_hours=_int(env, "DASHBOARD_SESSION_MAX_HOURS", 12, minimum=1),
            log_spool_max_bytes=_int(
                env, "LOG_SPOOL_MAX_BYTES", 64 * 1024 * 1024, minimum=64 * 1024
            ),
            auth_cache_seconds=_int(env, "AUTH_CACHE_MS", 500, minimum=0, maximum=1000) / 1000,
            token_expiry_days=_int(env, "TOKEN_EXPIRY_DAYS", 365, minimum=1, maximum=730),
            max_active_tokens=_int(env, "MAX_ACTIVE_TOKENS_PER_ORG", 2, minimum=1),
            db_connect_timeout=_int(env, "DB_CONNECT_TIMEOUT_MS", 5000, minimum=100) / 1000,
            db_acquire_timeout=_int(env, "DB_ACQUIRE_TIMEOUT_MS", 2000, minimum=10) / 1000,
            db_statement_timeout_ms=_int(env, "DB_STATEMENT_TIMEOUT_MS", 30_000, minimum=100),
            db_lock_timeout_ms=_int(env, "DB_LOCK_TIMEOUT_MS", 5000, minimum=10),
            retry_after_seconds=_int(env, "RETRY_AFTER_SECONDS", 5, minimum=1),
            header_timeout=_int(env, "HTTP_HEADER_TIMEOUT_SECONDS", 10, minimum=1),
            body_timeout=_int(env, "SCIM_BODY_TIMEOUT_SECONDS", 10, minimum=1),
            rate_limit_per_second=_int(env, "SCIM_RATE_LIMIT_PER_SECOND", 50, minimum=1),
            rate_limit_burst=_int(env, "SCIM_RATE_LIMIT_BURST", 100, minimum=1),
            org_pool_share_percent=_int(env, "ORG_POOL_SHARE_PERCENT", 50, minimum=1, maximum=100),
            max_queued_requests=_int(env, "SCIM_MAX_QUEUED_REQUESTS", 100, minimum=0),
            shutdown_drain_seconds=_int(env, "SHUTDOWN_DRAIN_SECONDS", 5, minimum=0),
            shutdown_timeout=_int(env, "SHUTDOWN_TIMEOUT_SECONDS", 20, minimum=1),
        )

    @property
    def org_connection_share(self) -> int:
        """Connections (and so concurrent SCIM requests) one org may hold at once."""
        return max(1, self.db_pool_max_size * self.org_pool_share_percent // 100)

    @property
    def log_spool_dir(self) -> Path:
        """Where provisioning-log rows wait while the database is away."""
        return self.data_dir / "log-spool"

    @property
    def public_origin(self) -> str:
        return self.public_base_url or f"http://{self.host}:{self.port}"

    @property
    def scim_base_url(self) -> str:
        """The URL an admin pastes into Okta's "SCIM connector base URL" field."""
        return self.public_origin + self.scim_base_path

    @property
    def local_http(self) -> bool:
        """Served over plain HTTP on a loopback address: local development, where
        browsers refuse `Secure` and `__Host-` cookies."""
        parts = urlsplit(self.public_origin)
        return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
