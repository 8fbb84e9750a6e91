"""Reachability of what the forum depends on, for /healthz."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return Check("database", True, connection.vendor)
    except Exception as exc:
        return Check("database", False, f"{type(exc).__name__}: {exc}")


def check_broker() -> Check | None:
    if not settings.REDIS_URL:
        return None  # tasks run eagerly in-process: there is no broker to be down
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
        return Check("broker", True, "redis")
    except Exception as exc:
        return Check("broker", False, f"{type(exc).__name__}: {exc}")


def check_lightning() -> Check:
    from forum.services import node

    try:
        info = node.client().get_info()
        return Check("lnd", True, f"{info.alias} {info.identity_pubkey}")
    except Exception as exc:
        return Check("lnd", False, f"{type(exc).__name__}: {exc}")


def run_checks() -> list[Check]:
    checks = [check_database(), check_broker(), check_lightning()]
    return [check for check in checks if check is not None]
