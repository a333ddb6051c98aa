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
from kgents.garden.store import open_store
from kgents.synapse.queue import queue_on
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
    assert set(services) == {"postgres", "qdrant", "redis", "server", "lb", "relay"}
    assert services["server"]["command"][0] == "serve" and "0.0.0.0" in services["server"]["command"]
    assert services["relay"]["command"] == ["synapse", "run"]
    assert services["relay"]["healthcheck"]["test"] == ["CMD", "kgents", "synapse", "alive"]
    env = services["server"]["environment"]
    assert env["KGENTS_QDRANT_URL"].startswith("http://qdrant:") and env["KGENTS_REDIS_URL"].startswith(
        "redis://redis:"
    )
    Settings.from_env({k: v for k, v in env.items() if k != "KGENTS_SERVER_TOKEN"})  # the URLs are valid settings


def test_compose_scales_the_server_behind_its_load_balancer() -> None:
    """`--scale server=3`: no replica binds a host port (the balancer alone does), and the balancer re-resolves
    `server` (every replica) instead of pinning the addresses it found at start."""
    services = compose()["services"]
    assert "ports" not in services["server"] and services["server"]["expose"] == ["8765"]
    bound = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert bound == {"lb": ["127.0.0.1:8765:8765"]}, "only the balancer publishes a port"
    assert services["lb"]["depends_on"]["server"] == {"condition": "service_healthy"}
    (mount,) = services["lb"]["volumes"]
    conf = (DEPLOY / mount.split(":")[0]).read_text(encoding="utf-8")
    assert re.search(r"resolver 127\.0\.0\.11 valid=\d+s", conf), "Docker's DNS, asked again"
    assert "set $kgents_server server:8765;" in conf and "proxy_pass http://$kgents_server;" in conf
    assert re.search(r"client_max_body_size (\d+)m", conf) and "listen 8765;" in conf


def lock_names() -> dict[str, list[str]]:
    """Each package the lock pins, with its hashes."""
    pinned: dict[str, list[str]] = {}
    name = ""
    for line in (DEPLOY / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==([^ ]+)", line):
            name = match[1].lower().replace("_", "-")
            pinned[name] = []
        elif match := re.search(r"--hash=sha256:([0-9a-f]{64})", line):
            pinned[name].append(match[1])
    return pinned


def test_the_image_installs_from_a_lock_file_with_hashes() -> None:
    import tomllib

    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = [*project["project"]["dependencies"], *project["project"]["optional-dependencies"]["quality"]]
    wanted += project["build-system"]["requires"]
    pinned = lock_names()
    names = {re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower().replace("_", "-") for req in wanted}
    assert names <= set(pinned), f"not in the lock: {sorted(names - set(pinned))}"
    assert all(pinned.values()), "every pin has its hashes"
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --require-hashes -r deploy/requirements.lock" in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile, "kgents itself fetches nothing more"
    assert "pip install ." not in dockerfile


def placeholder_token() -> str:
    token = str(k8s("Secret", "kgents-secrets")["stringData"]["KGENTS_SERVER_TOKEN"])
    assert token, "the example shows where the token goes"
    return token


@pytest.mark.parametrize(
    ("token", "says"),
    [
        (None, "placeholder"),  # the k8s example's
        ("change-me-please-now", "placeholder"),
        ("0123456789abcdefghij-replace-me", "placeholder"),
        ("aaaaaaaaaaaaaaaaaaaaaaaa", "different characters"),
        ("short-token", "16-512 visible ASCII"),
    ],
)
def test_serve_refuses_placeholder_and_weak_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, token: str | None, says: str
) -> None:
    chosen = token or placeholder_token()
    cli = CliHarness(Settings(home=tmp_path / "home"), capsys, monkeypatch)
    monkeypatch.setenv("KGENTS_SERVER_TOKEN", chosen)
    code, out, err = cli("serve", "--host", "127.0.0.1", "--port", "0")
    assert code == 78 and says in err and chosen not in err + out, err
    assert not (tmp_path / "home" / "index").exists(), "refused before anything was opened"


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
        await queue_on(store.anchor).beat(heartbeat)
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
