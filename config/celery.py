"""The Celery app, configured from Django settings (CELERY_* names)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender: Any = None, **kwargs: Any) -> None:
    """Between tasks, what Django does between requests (see CELERY_DB_REUSE_MAX in settings)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # in-process: the caller's connection, maybe inside its transaction
    from django.db import close_old_connections

    close_old_connections()
