"""Deployment behind TLS: the production variables satisfy `check --deploy`, and the embedded
default keeps working on plain http://127.0.0.1:8000."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PRODUCTION = {
    "ALLOWED_HOSTS": "forum.example",
    "CSRF_TRUSTED_ORIGINS": "https://forum.example",
    "TRUST_X_FORWARDED_PROTO": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SESSION_COOKIE_SECURE": "1",
    "CSRF_COOKIE_SECURE": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}
TLS_VARIABLES = [name for name in PRODUCTION if name not in {"ALLOWED_HOSTS"}]


def _check_deploy(tmp_path, extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PRODUCTION and not k.startswith(("DEBUG", "SECRET_KEY", "DATABASE_"))
    }
    env.update(
        FORUM_DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path}/forum.sqlite3",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_variables_pass_check_deploy(tmp_path):
    result = _check_deploy(tmp_path, PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_embedded_default_is_plain_http_and_check_deploy_says_so(tmp_path):
    """Without the variables nothing forces https (make run must work on http://127.0.0.1),
    and check --deploy names exactly what a public deployment still has to turn on."""
    result = _check_deploy(tmp_path, {})
    assert result.returncode != 0
    for warning in ("W004", "W008", "W012", "W016"):  # HSTS, redirect, session, CSRF cookie
        assert f"security.{warning}" in result.stdout + result.stderr


@pytest.fixture
def reload_settings(monkeypatch):
    import config.settings as settings_module

    def load(env: dict[str, str]):
        for name in PRODUCTION:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return importlib.reload(settings_module)

    yield load
    monkeypatch.undo()
    importlib.reload(settings_module)


def test_defaults_send_cookies_over_http_and_trust_no_proxy_header(reload_settings):
    fresh = reload_settings({})
    assert not hasattr(fresh, "SECURE_PROXY_SSL_HEADER")
    assert (fresh.SESSION_COOKIE_SECURE, fresh.CSRF_COOKIE_SECURE) == (False, False)
    assert (fresh.SECURE_SSL_REDIRECT, fresh.SECURE_HSTS_SECONDS) == (False, 0)


def test_each_tls_variable_is_read(reload_settings):
    fresh = reload_settings({name: PRODUCTION[name] for name in TLS_VARIABLES})
    assert fresh.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert fresh.SESSION_COOKIE_SECURE and fresh.CSRF_COOKIE_SECURE and fresh.SECURE_SSL_REDIRECT
    assert fresh.SECURE_HSTS_SECONDS == 31536000
    assert fresh.SECURE_HSTS_INCLUDE_SUBDOMAINS and fresh.SECURE_HSTS_PRELOAD
    assert fresh.CSRF_TRUSTED_ORIGINS == ["https://forum.example"]


@pytest.mark.django_db
def test_behind_the_proxy_https_is_recognised_and_health_checks_are_not_redirected(
    client, settings
):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    plain = client.get("/how-to-post/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    assert client.get("/healthz").status_code in {200, 503}  # probed over http, not redirected
    secure = client.get("/how-to-post/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=3600"
