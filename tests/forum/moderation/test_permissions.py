"""Every console URL, GET and POST: anonymous -> login page, signed-in non-moderator -> 403.

The URL list comes from the `mod` namespace itself, so a new console page is covered (and has
to be reachable with the sample arguments below) without touching this file.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.urls import URLPattern, get_resolver, reverse

from forum.permissions import MODERATOR_GROUP, check_moderator, is_moderator

pytestmark = pytest.mark.django_db

SAMPLE_KWARGS = {"pk": 1, "pubkey": "ab" * 32, "slug": "general"}
PUBLIC = {"login"}


def console_urls() -> list[tuple[str, str]]:
    resolver = get_resolver()
    _prefix, sub = resolver.namespace_dict["mod"]
    urls = []
    for pattern in sub.url_patterns:
        assert isinstance(pattern, URLPattern), "the console has no nested includes"
        name = pattern.name
        assert name, f"unnamed console URL {pattern.pattern}"
        kwargs = {key: SAMPLE_KWARGS[key] for key in pattern.pattern.converters}
        urls.append((name, reverse(f"mod:{name}", kwargs=kwargs)))
    return urls


URLS = console_urls()


def test_the_list_is_complete():
    names = {name for name, _ in URLS}
    assert {"home", "logout", "post-hide", "thread-lock", "rejection-refund", "audit"} <= names
    assert len(URLS) >= 20


@pytest.mark.parametrize(("name", "url"), [u for u in URLS if u[0] not in PUBLIC])
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_is_sent_to_login(client, name, url, method):
    response = getattr(client, method)(url)
    assert response.status_code == 302, (name, method)
    assert response["Location"].startswith(reverse("mod:login") + "?next=")


@pytest.mark.parametrize(("name", "url"), [u for u in URLS if u[0] not in PUBLIC])
@pytest.mark.parametrize("method", ["get", "post"])
def test_non_moderator_gets_403(client, member, name, url, method):
    client.force_login(member)
    assert getattr(client, method)(url).status_code == 403, (name, method)


def test_csrf_is_enforced_on_console_posts(moderator, forum):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(moderator)
    response = strict.post(reverse("mod:post-hide", args=[forum.replies[0].pk]))
    assert response.status_code == 403
    page = strict.get(reverse("mod:thread", args=[forum.thread.pk]))
    assert b"csrfmiddlewaretoken" in page.content


def test_who_is_a_moderator(moderator, staff, member):
    superuser = User.objects.create_superuser("root", password="x" * 12)
    inactive = User.objects.create_user("gone", password="x" * 12, is_staff=True, is_active=False)
    assert is_moderator(moderator) and is_moderator(staff) and is_moderator(superuser)
    assert not is_moderator(member) and not is_moderator(inactive) and not is_moderator(None)
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        check_moderator(member)
    member.groups.add(Group.objects.get(name=MODERATOR_GROUP))
    assert is_moderator(User.objects.get(pk=member.pk))
