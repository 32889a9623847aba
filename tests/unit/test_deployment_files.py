"""The production-shaped deployment file, checked without a Docker engine (none runs here).

``docker compose config`` needs the engine's CLI plugin; this test parses the YAML and checks the
shape the issue asks for: PostGIS 15-3.x, Redis 7, api and worker built from one Dockerfile, health
checks, and a volume for the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    return document


def test_services_and_images() -> None:
    services = compose()["services"]
    assert set(services) == {"db", "redis", "api", "worker", "witness-fujian", "witness-ningxia"}
    assert services["db"]["image"].startswith("postgis/postgis:15-3.")
    assert services["redis"]["image"].split(":")[1].startswith("7")
    assert services["api"]["build"] == services["worker"]["build"] == "."
    assert (REPO / "Dockerfile").is_file()


def test_health_checks_and_ordering() -> None:
    services = compose()["services"]
    for name in ("db", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        environment = services[name]["environment"]
        assert environment["SHANHAI_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert environment["SHANHAI_BROKER_URL"].startswith("redis://")
        # The audit signing key comes from a secret file, never from the database or the image.
        assert environment["SHANHAI_AUDIT_SIGNING_KEY_FILE"] == "/run/secrets/audit_signing_key"
        assert services[name]["secrets"] == ["audit_signing_key"]


def test_database_has_a_volume() -> None:
    document = compose()
    volume = document["services"]["db"]["volumes"][0].split(":")[0]
    assert volume in document["volumes"]


def test_the_api_is_served_by_shanhai_serve_which_hides_the_server_header() -> None:
    # `shanhai serve` passes server_header=False to uvicorn (tests/e2e/test_security_headers.py); a bare
    # `uvicorn` command would answer `server: uvicorn` unless it says --no-server-header.
    api_command = " ".join(compose()["services"]["api"]["command"])
    dockerfile_cmd = next(
        line for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines() if line.startswith("CMD")
    )
    for command in (api_command, dockerfile_cmd):
        assert "shanhai serve" in command or '"shanhai", "serve"' in command, command
        assert "uvicorn" not in command or "--no-server-header" in command, command


def test_two_provincial_witnesses_cosign_and_the_worker_schedules_the_rounds() -> None:
    document = compose()
    services = document["services"]
    for province in ("fujian", "ningxia"):
        witness = services[f"witness-{province}"]
        command = " ".join(witness["command"])
        assert command.startswith("shanhai witness serve")
        assert f"--name=witness.{province}.example/shanhai" in command
        assert "--log=${SHANHAI_AUDIT_LOG_VKEY" in command
        # Its own key only: none of the platform's secrets or settings reach a witness.
        assert witness["secrets"] == [f"witness_{province}_key"]
        assert "environment" not in witness
        assert witness["volumes"][0].split(":")[0] in document["volumes"]
        assert witness["healthcheck"]["test"]
    environment = services["api"]["environment"]
    witnesses = environment["SHANHAI_AUDIT_WITNESSES"]
    assert "http://witness-fujian:8100" in witnesses and "http://witness-ningxia:8100" in witnesses
    assert environment["SHANHAI_AUDIT_WITNESS_QUORUM"] == "2"
    assert "--beat" in services["worker"]["command"]


def test_api_and_worker_share_the_data_volume() -> None:
    """The GEP value COGs a worker writes are the ones the API tiles (issue 24)."""
    services = compose()["services"]
    assert "appdata:/app/var" in services["api"]["volumes"]
    assert "appdata:/app/var" in services["worker"]["volumes"]
    assert "appdata" in compose()["volumes"]
