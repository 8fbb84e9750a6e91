import pytest


@pytest.mark.django_db
def test_healthz_reports_each_dependency_and_fails_when_lnd_is_unreachable(
    client, settings, tmp_path
):
    settings.LND_GRPC_HOST = ""
    settings.LND_CONNECT = ""
    settings.SIMNET_ENABLED = True
    settings.SIMNET_DATA_DIR = tmp_path  # no simnet running there
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["lnd"]["ok"] is False
    assert "no Lightning node configured" in body["checks"]["lnd"]["detail"]


@pytest.mark.django_db
def test_home_page_serves(client):
    response = client.get("/")
    assert response.status_code == 200
