from pathlib import Path

import pytest

from config.env import database_from_url, secret_key


def test_postgres_url_becomes_a_postgres_database():
    db = database_from_url(
        "postgres://forum:s%40cret@db.example:6543/lnforum?sslmode=require", Path("/x")
    )
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "lnforum",
        "forum",
        "s@cret",
        "db.example",
        "6543",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_sqlite_relative_and_absolute_paths(tmp_path):
    assert database_from_url("sqlite:///var/f.db", tmp_path)["NAME"] == str(tmp_path / "var/f.db")
    assert database_from_url("sqlite:////abs/f.db", tmp_path)["NAME"] == "/abs/f.db"


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="not supported"):
        database_from_url("mysql://x/y", Path("/x"))


def test_secret_key_is_generated_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = secret_key(tmp_path)
    assert len(first) > 40
    assert secret_key(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_secret_key_from_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert secret_key(tmp_path) == "from-env"
    assert not (tmp_path / "secret_key").exists()


def test_embedded_default_runs_tasks_eagerly_without_redis(monkeypatch):
    import importlib

    import config.settings as settings_module

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    fresh = importlib.reload(settings_module)
    try:
        assert fresh.CELERY_TASK_ALWAYS_EAGER is True
        assert fresh.CHANNEL_LAYERS["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
        assert fresh.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    finally:
        monkeypatch.undo()
        importlib.reload(settings_module)


def test_redis_url_switches_broker_and_channel_layer(monkeypatch):
    import importlib

    import config.settings as settings_module

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    fresh = importlib.reload(settings_module)
    try:
        assert fresh.CELERY_TASK_ALWAYS_EAGER is False
        assert fresh.CELERY_BROKER_URL == "redis://127.0.0.1:6379/3"
        assert fresh.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
        assert fresh.CELERY_TASK_ACKS_LATE and fresh.CELERY_TASK_REJECT_ON_WORKER_LOST
    finally:
        monkeypatch.undo()
        importlib.reload(settings_module)
