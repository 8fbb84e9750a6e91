"""The demo moderator: created once, stable password, prints how to sign in."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from forum import embedded
from forum.permissions import is_moderator
from forum.services.moderation import demo

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def test_hook_is_registered():
    assert "forum.services.moderation.demo:startup_hook" in embedded.STARTUP_HOOKS


def test_startup_hook_creates_and_prints(settings, capsys, client, tmp_path):
    settings.DEMO_MODE = True
    demo.startup_hook(None)
    out = capsys.readouterr().out
    password = (tmp_path / demo.PASSWORD_FILE).read_text()
    assert "/mod/" in out and password in out
    assert (tmp_path / demo.PASSWORD_FILE).stat().st_mode & 0o077 == 0
    user, again, created = demo.demo_moderator_ensure()
    assert again == password and not created and is_moderator(user)
    assert client.login(username="moderator", password=password)


def test_nothing_outside_demo_mode(settings, capsys):
    settings.DEMO_MODE = False
    demo.startup_hook(None)
    assert capsys.readouterr().out == ""
    with pytest.raises(CommandError):
        call_command("create_demo_moderator")


def test_command(settings, capsys):
    settings.DEMO_MODE = True
    call_command("create_demo_moderator")
    assert "password" in capsys.readouterr().out
