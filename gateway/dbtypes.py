"""The connection type that store functions accept: a plain connection or a pooled one."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

if TYPE_CHECKING:
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:  # the runtime classes are not generic
    Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
