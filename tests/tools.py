"""External programs some tests need (Debian's `prometheus` gives prometheus and promtool).

Missing on a developer's machine: the test is skipped, saying what to install. Missing
under CI (env CI set): the test fails, so a CI image without them cannot pass silently.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is not None:
        return path
    message = f"{program} is not installed (apt-get install {package}; .ci/run does this)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
