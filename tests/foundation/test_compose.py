"""docker-compose.yml cannot run here (no Docker engine), so its shape is what we test."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_every_service_the_readme_names_exists():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## What runs where", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`compose: ([a-z-]+)`", table))
    assert {
        "postgres",
        "redis",
        "bitcoind",
        "lnd",
        "lnd-user",
        "web",
        "worker",
        "beat",
        "listener",
    } <= named
    assert named <= set(SERVICES), (
        f"README names services the compose file lacks: {named - set(SERVICES)}"
    )


def test_forum_processes_share_one_image_and_one_environment():
    forum = [SERVICES[name] for name in ("web", "worker", "beat", "listener")]
    assert len({svc["image"] for svc in forum}) == 1
    assert all(svc["environment"] == forum[0]["environment"] for svc in forum)
    assert forum[0]["environment"]["LND_GRPC_HOST"] == "lnd:10009"


def test_forum_reads_lnd_credentials_from_the_shared_volume():
    env = SERVICES["web"]["environment"]
    lnd_volume = SERVICES["lnd"]["volumes"][0].split(":")[0]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in SERVICES["web"]["volumes"]}
    assert lnd_volume in mounts
    assert env["LND_TLS_CERT"].startswith(mounts[lnd_volume])
    assert env["LND_MACAROON"].startswith(mounts[lnd_volume])
    assert lnd_volume in COMPOSE["volumes"]


def test_stateful_services_have_healthchecks_and_named_volumes():
    for name in ("postgres", "redis", "bitcoind", "lnd", "lnd-user"):
        assert "healthcheck" in SERVICES[name], name
        volume = SERVICES[name]["volumes"][0].split(":")[0]
        assert volume in COMPOSE["volumes"], name


def test_forum_node_accepts_keysend_and_the_user_node_is_separate():
    assert "--accept-keysend" in SERVICES["lnd"]["command"]
    assert SERVICES["lnd-user"]["volumes"] != SERVICES["lnd"]["volumes"]
