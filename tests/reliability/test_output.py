"""Process output carries no token and no email, wherever a client puts them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.logs import JsonFormatter
from gateway.scim.auth import AUTH_FAILURE_DETAILS
from gateway.tokens import PREFIX, AuthFailure
from tests.conftest import OrgWithToken
from tests.payloads import OKTA_HEADERS, dumps, okta_create_user
from tests.reliability.battery import cases, fill, headers_for

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """Everything logged while the test runs, formatted as `serve` formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_the_401_help_names_the_token_prefix() -> None:
    assert f"those start with '{PREFIX}'" in AUTH_FAILURE_DETAILS[AuthFailure.NOT_A_SCIM_TOKEN]


async def test_no_token_or_email_reaches_the_output(
    client: Client,
    base: str,
    acme: OrgWithToken,
    globex: OrgWithToken,
    db: asyncpg.Connection,
    output: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emails = [f"person{i}@example.com" for i in range(3)]
    headers = {**OKTA_HEADERS, **acme.headers}
    created = await client.post(
        f"{base}/Users", headers=headers, data=dumps(okta_create_user(user_name=emails[0]))
    )
    user_id = (await created.json(content_type=None))["id"]
    tokens = [acme.token, globex.token]
    requests = [
        ("GET", f"{base}/Users?filter=userName%20eq%20%22{emails[1]}%22", headers),
        ("GET", f"{base}/Users?access_token={acme.token}", headers),
        ("GET", f"{base}/Users/{globex.token}", headers),
        ("GET", f"/api/scim/v2/{acme.token}/Users", headers),
        ("GET", f"{base}/Users/{emails[2]}", headers),
        ("GET", f"{base}/Users", {"Authorization": f"Bearer Bearer {acme.token}"}),
        ("GET", f"{base}/Users", {"Authorization": f"Bearer {globex.token[:-3]}"}),
        ("GET", f"/healthz?token={acme.token}", {}),
    ]
    for method, url, sent in requests:
        await client.request(method, url, headers=sent)
    for case in cases():  # bodies with emails, some refused, some with unstorable text
        if not case.full_size_only and case.method == "POST" and case.path == "/Users":
            path, body = fill(case, user_id, user_id)
            await client.post(base + path, headers=headers_for(case, acme.token), data=body)
    # A traceback holding personal data, as a failing statement's error message can.
    try:
        raise ValueError(f"bad row for {emails[0]} sent with {acme.token}")
    except ValueError:
        logging.getLogger("gateway.test").exception("a failure quoting a body")
    text = output.getvalue()
    captured = capsys.readouterr()
    everything = text + captured.out + captured.err
    for secret in [*tokens, *emails, "hostile@example.com"]:
        assert secret not in everything, secret
    assert "Traceback" in text
    lines = [json.loads(line) for line in text.splitlines()]
    access = [line for line in lines if line["logger"] == "gateway.access"]
    assert len(access) >= len(requests)
    scim = [line for line in access if line["path"].startswith(base)]
    assert all(len(line["request_id"]) == 32 for line in scim)
    assert {"access_token"} in [set(line["query_keys"]) for line in access]
    rows = {r["request_id"] for r in await db.fetch("SELECT request_id FROM provisioning_log")}
    assert {line["request_id"] for line in scim} <= rows
