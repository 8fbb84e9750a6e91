"""Recount the visible counters from the rows (after a rebuild re-applied moderation flags).

Normal operation moves counters by deltas (publish, hide/unhide); this is the slow, exact
version with the same definitions as `moderation.hide`: visible threads; visible replies;
board posts = visible threads + visible replies in visible threads.
"""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from forum.models import Author, Board, Post, Thread


def _count(queryset, field: str) -> Coalesce:
    counted = queryset.order_by().values(field).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def counters_recompute() -> None:
    visible_posts = Post.objects.filter(is_hidden=False)
    visible_threads = Thread.objects.filter(is_hidden=False)
    Thread.objects.update(reply_count=_count(visible_posts.filter(thread=OuterRef("pk")), "thread"))
    Author.objects.update(
        thread_count=_count(visible_threads.filter(author=OuterRef("pk")), "author"),
        reply_count=_count(visible_posts.filter(author=OuterRef("pk")), "author"),
    )
    on_board = Q(thread__is_hidden=False)
    Board.objects.update(
        thread_count=_count(visible_threads.filter(board=OuterRef("pk")), "board"),
        post_count=_count(visible_threads.filter(board=OuterRef("pk")), "board")
        + _count(visible_posts.filter(on_board, board=OuterRef("pk")), "board"),
    )
