"""Long-running commands as real processes: `kgents metrics serve` scraped over HTTP and parsed with
prometheus-client's parser; `kgents ghost --daemon` writing its files every interval until SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kgents.config import Settings
from kgents.health.ghost import HEALTH_JSON, STATUS_LINE, ghost_dir, read_ghost
from kgents.health.model import Level
from kgents.health.prometheus import render_prometheus
from tests.helpers import kgents_env, wait_until_sync
from tests.soul.conftest import free_port


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def start(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("kgents")), *args],
        env=kgents_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=20) as response:
            return str(response.read().decode())
    except OSError:
        return None


@pytest.mark.slow
def test_metrics_endpoint_scraped_and_parsed(home: Settings, processes: list[subprocess.Popen[str]]) -> None:
    port = free_port()
    processes.append(start(home, "metrics", "serve", "--port", str(port), "--timeout", "10"))
    text = wait_until_sync(lambda: scrape(port), lambda t: t is not None, timeout=60, what="a scrape")
    assert text is not None
    families = {f.name: f for f in text_string_to_metric_families(text)}
    level = {tuple(sorted(s.labels.items())): s.value for s in families["kgents_health_level"].samples}
    assert set(dict(k)["part"] for k in level) == {"triad", "durability", "resonance", "reflex", "synapse"}
    assert level[(("backend", "embedded"), ("part", "reflex"))] == Level.HEALTHY.score
    coherency = families["kgents_index_coherency_ratio"].samples
    assert [s.value for s in coherency] == [1.0]
    assert coherency[0].labels == {"part": "resonance", "backend": "Qdrant Edge"}
    assert families["kgents_synapse_events_processed"].type == "counter"
    assert families["kgents_anchor_commit_latency_seconds"].samples[0].value > 0
    for name in families:
        assert name.startswith("kgents_"), name
    processes[0].send_signal(signal.SIGTERM)
    assert processes[0].wait(timeout=20) == 0


def test_render_prometheus_is_the_same_exposition(home: Settings) -> None:
    import asyncio

    from kgents.health.collect import collect_health
    from tests.health.support import relaxed

    health = asyncio.run(collect_health(home, relaxed(probe_timeout_s=10.0)))
    names = {f.name for f in text_string_to_metric_families(render_prometheus(health).decode())}
    assert {"kgents_health_level", "kgents_health_up", "kgents_index_coherency_ratio"} <= names
    assert "kgents_spark_memory_used_bytes" in names, "a family without samples is still described"


@pytest.mark.slow
def test_ghost_daemon_writes_every_interval_until_sigterm(
    home: Settings, processes: list[subprocess.Popen[str]]
) -> None:
    processes.append(start(home, "ghost", "--daemon", "--interval", "1", "--timeout", "10"))
    path = ghost_dir(home.home) / HEALTH_JSON
    wait_until_sync(lambda: path.exists(), timeout=60, what="the first write")
    first = path.stat().st_mtime_ns
    wait_until_sync(lambda: path.stat().st_mtime_ns, lambda m: m != first, timeout=60, what="a second write")
    assert read_ghost(home.home).level is not Level.UNKNOWN
    assert (ghost_dir(home.home) / STATUS_LINE).read_text().startswith("triad:")
    processes[0].send_signal(signal.SIGTERM)
    assert processes[0].wait(timeout=30) == 0, processes[0].stderr.read() if processes[0].stderr else ""
    assert oct(os.stat(ghost_dir(home.home)).st_mode & 0o777) == "0o700"


def test_the_grafana_dashboard_only_uses_metrics_we_expose(home: Settings) -> None:
    import asyncio
    import json
    import re

    from kgents.health.collect import collect_health
    from tests.health.support import relaxed

    health = asyncio.run(collect_health(home, relaxed(probe_timeout_s=10.0)))
    exposed = set(re.findall(r"^# TYPE (\w+) ", render_prometheus(health).decode(), re.M))
    exposed |= {f"{name}_total" for name in exposed}
    dashboard = json.loads((Path(__file__).parents[2] / "deploy" / "grafana" / "kgents-triad.json").read_text())
    used = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"kgents_\w+", t["expr"])}
    assert used and used <= exposed, used - exposed
