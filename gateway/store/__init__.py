"""The only code that touches SQL. Functions take a connection; callers own transactions."""

from __future__ import annotations

import ipaddress


def parse_ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address for an `inet` column; None for anything that is not one (e.g. a Unix socket)."""
    if not value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
