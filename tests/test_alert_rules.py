"""The Prometheus alert rules: valid, each alert tested firing and quiet by promtool, and
their Okta guidance the same words as the provisioning log's."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gateway.provlog.guidance import OKTA_WAITS
from tests.tools import require

RULES_DIR = Path(__file__).resolve().parent.parent / "grafana" / "prometheus"
RULES = RULES_DIR / "scim-gateway.rules.yml"
RULE_TESTS = RULES_DIR / "scim-gateway.rules.test.yml"


def alert_names() -> list[str]:
    return re.findall(r"^\s+- alert: (\w+)$", RULES.read_text("utf-8"), re.MULTILINE)


def test_promtool_checks_the_rules() -> None:
    promtool = require("promtool", "prometheus")
    out = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in out.stdout


def test_promtool_unit_tests_pass_for_every_alert_firing_and_quiet() -> None:
    promtool = require("promtool", "prometheus")
    out = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    tests = RULE_TESTS.read_text("utf-8")
    for alert in alert_names():
        assert f"name: {alert} fires" in tests
        assert f"name: {alert} stays quiet" in tests
        assert tests.count(f"alertname: {alert}\n") == 2


def test_alerts_cover_the_issue_and_carry_the_logs_retry_guidance() -> None:
    assert set(alert_names()) == {
        "ScimTokenFailing",
        "ScimWrongBaseUrl",
        "ScimServerErrorRatio",
        "ScimLatencyNearOktaTimeout",
        "ScimSyncStalled",
        "ScimDatabaseUnreachable",
        "ScimLogRowsSpooling",
        "ScimTokenExpiringSoon",
        "ScimNoTraffic",
    }
    text = RULES.read_text("utf-8")
    assert text.count(f'okta_next: "{OKTA_WAITS}"') == len(alert_names())
    for key in ("summary", "what_happened", "fix_first", "runbook"):
        assert text.count(f"          {key}: ") == len(alert_names()), key
