"""Settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.data_dir == Path("var")
    assert settings.scim_base_path == "/api/sch/scim/v2"
    assert settings.scim_base_url == "http://127.0.0.1:8080/api/sch/scim/v2"


def test_everything_can_be_set() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:secret@db/x",
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
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_PORT": "eighty"}, "GATEWAY_PORT must be an integer"),
        ({"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "2"}, "must not be below"),
        ({"PUBLIC_BASE_URL": "api.example.com"}, "must start with https://"),
        ({"SCIM_BASE_PATH": "/"}, "SCIM_BASE_PATH"),
        ({"SCIM_BASE_PATH": "/a//b"}, "SCIM_BASE_PATH"),
        ({"SCIM_MAX_BODY_BYTES": "10"}, "at least 1024"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
