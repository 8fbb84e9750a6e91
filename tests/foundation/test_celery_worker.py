"""A task travels through the real Redis broker to a real worker process and back."""

import pytest

from forum.tasks import worker_health


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_task_round_trip_through_real_broker_and_worker(celery_worker):
    result = worker_health.delay()
    answer = result.get(timeout=30)
    assert answer["database"] is True
    assert answer["detail"] == "postgresql"
    # It really ran elsewhere: the eager path would not produce an AsyncResult with a backend state.
    assert result.state == "SUCCESS"
