"""The server serves the health model: `/v1/health` and `/metrics` behind the token, measured by the process that owns
the embedded index; `kgents status` and AGENTESE read health through a running server instead of a stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kgents.config import Settings
from tests.helpers import wait_until_sync
from tests.server_support import cli, running_server


def test_health_and_metrics_come_from_the_server_that_owns_the_index(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with running_server(settings) as server:
        planted = cli(settings, "garden", "plant", "I prefer minimal code", "--type", "preference")
        assert planted.returncode == 0, planted.stderr
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.get("/metrics").status_code == 401, "the figures describe the memory: token required"
            assert http.get("/v1/health").status_code == 401
            health = wait_until_sync(  # the server's relay applies the CLI's write within its poll
                lambda: http.get("/v1/health", headers=headers).json(),
                lambda h: h["parts"]["resonance"]["figures"].get("matched") == 1,
                timeout=30,
                what="the server's health to show the planted entry",
            )
            scraped = http.get("/metrics", headers=headers)
        served = health["parts"]["resonance"]["figures"]
        assert health["schema_version"] == 1 and served["measured_by"].startswith("relay ") and served["age_s"] < 120
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
        coherency = [s.value for s in families["kgents_index_coherency_ratio"].samples]
        assert coherency == [1.0]
        # the CLI reads through the server: the figure its relay measured last, with its age
        status = cli(settings, "status", "--json")
        assert status.returncode == 0, status.stderr
        resonance = json.loads(status.stdout)["parts"]["resonance"]
        assert resonance["figures"]["measured_by"].startswith("relay ") and resonance["figures"]["matched"] == 1
        invoked = cli(settings, "invoke", "self.vitals.triad.coherency", "--json")
        assert invoked.returncode == 0 and json.loads(invoked.stdout)["coherency_with_truth"] == 1.0, invoked.stderr
