"""The moderation console under /mod/ — moderators only (see `forum.views.moderation`).

Every route but `login` requires a moderator; routes that change state accept POST only.
"""

from django.urls import path

from forum.views import moderation as views
from forum.views import moderation_invoices, moderation_kinds, moderation_tips

app_name = "mod"


def _verbs(prefix: str, view, verbs: tuple[str, ...], name: str) -> list:
    # One named URL per verb (not a free `<verb>` segment) so each is listed and tested.
    return [
        path(f"{prefix}/<int:pk>/{verb}/", view, {"verb": verb}, name=f"{name}-{verb}")
        for verb in verbs
    ]


urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout, name="logout"),
    path("threads/<int:pk>/", views.thread_detail, name="thread"),
    *_verbs("threads", views.thread_action, tuple(views.THREAD_VERBS), "thread"),
    *_verbs("posts", views.post_action, tuple(views.POST_VERBS), "post"),
    path("authors/<str:pubkey>/", views.author, name="author"),
    path("authors/<str:pubkey>/ban/", views.author_ban, name="author-ban"),
    path("authors/<str:pubkey>/unban/", views.author_unban, name="author-unban"),
    path("authors/<str:pubkey>/hide-all/", views.author_hide_all, name="author-hide-all"),
    path("bans/", views.bans, name="bans"),
    path("boards/", views.boards, name="boards"),
    path("boards/new/", views.board_create, name="board-create"),
    path("boards/<slug:slug>/", views.board_edit, name="board-edit"),
    path("rejections/", views.rejections, name="rejections"),
    path("rejections/<int:pk>/refund/", views.rejection_refund, name="rejection-refund"),
    path("revenue/", views.revenue, name="revenue"),
    path("revenue.csv", views.revenue_csv, name="revenue-csv"),
    path("audit/", views.audit, name="audit"),
    path("prices/", moderation_kinds.site_prices, name="site-prices"),
    path("deletions/", moderation_kinds.deletions, name="deletions"),
    path("authors/<str:pubkey>/nip05/", moderation_kinds.author_nip05, name="author-nip05"),
    path("tips/", moderation_tips.tip_forwards, name="tips"),
    path("tips/<int:pk>/retry/", moderation_tips.tip_forward_retry, name="tip-forward-retry"),
    path("invoices/", moderation_invoices.invoices, name="invoices"),
]
