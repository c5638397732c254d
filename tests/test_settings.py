"""Settings from the environment."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.database_read_url is None
    assert settings.data_dir == Path("var")
    assert settings.scim_base_path == "/api/sch/scim/v2"
    assert settings.scim_base_url == "http://127.0.0.1:8080/api/sch/scim/v2"


def test_everything_can_be_set() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:secret@db/x",
            "DATABASE_READ_URL": "postgresql://u:secret2@replica/x",
            "GATEWAY_DATA_DIR": "/srv/gw",
            "SCIM_BASE_PATH": "scim/v2/",
            "PUBLIC_BASE_URL": "https://api.securecodinghub.com/",
            "GATEWAY_HOST": "0.0.0.0",  # noqa: S104
            "GATEWAY_PORT": "9000",
            "DB_POOL_MIN_SIZE": "1",
            "DB_POOL_MAX_SIZE": "4",
            "SCIM_MAX_BODY_BYTES": "2048",
            "LOG_BODY_LIMIT_BYTES": "512",
        }
    )
    assert settings.scim_base_path == "/scim/v2"
    assert settings.scim_base_url == "https://api.securecodinghub.com/scim/v2"
    assert (settings.port, settings.db_pool_min_size, settings.db_pool_max_size) == (9000, 1, 4)
    assert (settings.max_body_bytes, settings.log_body_limit) == (2048, 512)
    assert settings.database_read_url == "postgresql://u:secret2@replica/x"
    assert "secret" not in repr(settings)


def test_reliability_settings() -> None:
    defaults = Settings.from_env({})
    # From the environment /metrics listens on loopback by default; a Settings built
    # in code (tests) opens no second listener unless asked.
    assert defaults.metrics_listen == ("127.0.0.1", 9464)
    assert replace(defaults, metrics_listen=None) == Settings()
    assert (defaults.token_expiry_days, defaults.max_active_tokens) == (365, 2)
    assert defaults.rate_limit_per_second > 25  # above Entra's 25 requests/s per tenant
    assert defaults.header_timeout < 60
    assert defaults.body_timeout < 60
    assert defaults.org_connection_share == 5
    settings = Settings.from_env(
        {
            "DB_CONNECT_TIMEOUT_MS": "1500",
            "DB_ACQUIRE_TIMEOUT_MS": "250",
            "DB_LOCK_TIMEOUT_MS": "100",
            "DB_STATEMENT_TIMEOUT_MS": "9000",
            "RETRY_AFTER_SECONDS": "7",
            "HTTP_HEADER_TIMEOUT_SECONDS": "3",
            "SCIM_BODY_TIMEOUT_SECONDS": "4",
            "SCIM_RATE_LIMIT_PER_SECOND": "30",
            "SCIM_RATE_LIMIT_BURST": "60",
            "ORG_POOL_SHARE_PERCENT": "30",
            "DB_POOL_MAX_SIZE": "20",
            "SCIM_MAX_QUEUED_REQUESTS": "0",
            "SHUTDOWN_DRAIN_SECONDS": "0",
            "SHUTDOWN_TIMEOUT_SECONDS": "30",
            "TOKEN_EXPIRY_DAYS": "730",
            "MAX_ACTIVE_TOKENS_PER_ORG": "3",
        }
    )
    assert (settings.db_connect_timeout, settings.db_acquire_timeout) == (1.5, 0.25)
    assert (settings.db_lock_timeout_ms, settings.db_statement_timeout_ms) == (100, 9000)
    assert (settings.header_timeout, settings.body_timeout) == (3, 4)
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (30, 60)
    assert settings.org_connection_share == 6
    assert (settings.shutdown_drain_seconds, settings.shutdown_timeout) == (0, 30)
    assert (settings.token_expiry_days, settings.max_active_tokens) == (730, 3)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_PORT": "eighty"}, "GATEWAY_PORT must be an integer"),
        ({"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "2"}, "must not be below"),
        ({"PUBLIC_BASE_URL": "api.example.com"}, "must start with https://"),
        ({"SCIM_BASE_PATH": "/"}, "SCIM_BASE_PATH"),
        ({"SCIM_BASE_PATH": "/a//b"}, "SCIM_BASE_PATH"),
        ({"SCIM_MAX_BODY_BYTES": "10"}, "at least 1024"),
        ({"TOKEN_EXPIRY_DAYS": "731"}, "at most 730"),
        ({"ORG_POOL_SHARE_PERCENT": "0"}, "ORG_POOL_SHARE_PERCENT must be at least 1"),
        (
            {"DATABASE_READ_URL": "postgresql://replica/x"},
            "DATABASE_READ_URL .* needs DATABASE_URL",
        ),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
