"""deploy/: the compose file and the Kubernetes manifests parse, pin their images, name only real settings, and
probe what they say they probe; `kgents synapse alive` (the relay's liveness probe) tells a beating relay."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kgents.clock import utcnow
from kgents.config import Settings
from kgents.garden import open_store
from kgents.synapse.records import Heartbeat
from tests.helpers import CliHarness

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
K8S = DEPLOY / "k8s"


class _Recorder(dict[str, str]):
    """An environment that remembers every name asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)


def setting_names() -> set[str]:
    """Every KGENTS_* variable `Settings.from_env` reads."""
    env = _Recorder()
    Settings.from_env(env)
    return {name for name in env.asked if name.startswith("KGENTS_")}


def documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert isinstance(doc, dict), path
            yield path, doc


def k8s(kind: str, name: str) -> dict[str, Any]:
    found = [d for p, d in documents() if p.parent == K8S and d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8")))


def test_every_kgents_name_is_a_setting() -> None:
    known = setting_names()
    assert {"KGENTS_POSTGRES_URL", "KGENTS_QDRANT_URL", "KGENTS_REDIS_URL"} <= known
    used: dict[str, set[str]] = {}
    for path in [*DEPLOY.rglob("*.yaml"), DEPLOY / "Dockerfile"]:
        for name in re.findall(r"\bKGENTS_[A-Z0-9_]+", path.read_text(encoding="utf-8")):
            used.setdefault(name, set()).add(path.name)
    assert used, "the manifests configure kgents through its settings"
    unknown = {name: sorted(files) for name, files in used.items() if name not in known}
    assert not unknown, f"not a kgents setting: {unknown}"


def images() -> Iterator[tuple[str, str]]:
    for name, service in compose()["services"].items():
        yield f"compose {name}", service["image"]
    for path, doc in documents():
        if path.parent == K8S and doc["kind"] in {"Deployment", "StatefulSet"}:
            for container in containers(doc):
                yield f"{doc['metadata']['name']}/{container['name']}", container["image"]


def test_images_are_pinned() -> None:
    seen = dict(images())
    assert len(seen) >= 10
    for where, image in seen.items():
        _, _, tag = image.rpartition(":")
        assert "/" not in tag and re.search(r"\d+\.\d+", tag) and tag != "latest", f"{where}: {image} is not pinned"
    assert "FROM python:3.11." in (DEPLOY / "Dockerfile").read_text(encoding="utf-8")


def test_compose_runs_the_triad_a_server_and_a_relay() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "qdrant", "redis", "server", "relay"}
    assert services["server"]["command"][0] == "serve" and "0.0.0.0" in services["server"]["command"]
    assert services["relay"]["command"] == ["synapse", "run"]
    assert services["relay"]["healthcheck"]["test"] == ["CMD", "kgents", "synapse", "alive"]
    env = services["server"]["environment"]
    assert env["KGENTS_QDRANT_URL"].startswith("http://qdrant:") and env["KGENTS_REDIS_URL"].startswith(
        "redis://redis:"
    )
    Settings.from_env({k: v for k, v in env.items() if k != "KGENTS_SERVER_TOKEN"})  # the URLs are valid settings


def test_kubernetes_relay_probes_its_heartbeat_and_server_sits_behind_a_service() -> None:
    (relay,) = containers(k8s("Deployment", "kgents-relay"))
    assert relay["args"] == ["synapse", "run"]
    assert relay["livenessProbe"]["exec"]["command"] == ["kgents", "synapse", "alive"]

    server_deployment = k8s("Deployment", "kgents-server")
    (server,) = containers(server_deployment)
    assert server["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert "/readyz" in " ".join(server["readinessProbe"]["exec"]["command"])
    service = k8s("Service", "kgents-server")
    labels = server_deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in server["ports"]}

    config, secret = k8s("ConfigMap", "kgents-config"), k8s("Secret", "kgents-secrets")
    for container in (relay, server):
        refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
        assert refs == {"kgents-config", "kgents-secrets"}
    values = {**config["data"], **secret["stringData"]}
    Settings.from_env({k: v for k, v in values.items() if v and k != "KGENTS_SERVER_TOKEN"})


@pytest.fixture
def cli(anchor_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliHarness:
    return CliHarness(anchor_settings, capsys, monkeypatch)


async def beat(settings: Settings, host: str, age_s: float) -> None:
    store = await open_store(settings)
    try:
        now = utcnow()
        heartbeat = Heartbeat(f"{host}:1:abc", 1, host, now - timedelta(minutes=1), now - timedelta(seconds=age_s), 5.0)
        await store.relay_side().beat(heartbeat)
    finally:
        await store.close()


def test_synapse_alive_tells_a_beating_relay_on_this_host(cli: CliHarness, anchor_settings: Settings) -> None:
    code, out, _ = cli("synapse", "alive")
    assert code == 2 and "no relay on" in out
    asyncio.run(beat(anchor_settings, "another-pod", 1.0))
    assert cli("synapse", "alive")[0] == 2, "another host's relay is not this pod's"
    asyncio.run(beat(anchor_settings, socket.gethostname(), 30.0))
    assert cli("synapse", "alive")[0] == 2, "a heartbeat past its interval + 2 beats is a stalled relay"
    asyncio.run(beat(anchor_settings, socket.gethostname(), 0.5))
    code, out, _ = cli("synapse", "alive")
    assert code == 0 and "alive" in out
    assert cli("synapse", "alive", "--host", "another-pod")[0] == 0
