"""The K-gent beside a running server on the embedded default: `kgents chat` and `kgents dream` go through the
server (it owns the index), and what the chat learned is in the server's memory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kgents.config import Settings
from tests.helpers import kgents_env
from tests.server_support import KGENTS, cli, running_server


def test_chat_and_dream_go_through_a_running_server(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with running_server(settings):
        chat = subprocess.run(
            [str(KGENTS), "chat"],
            input="I prefer minimal code\nWhat do you know about my style?\n",
            env=kgents_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert chat.returncode == 0, chat.stderr
        assert "Noted: I prefer minimal code" in chat.stdout and "session saved" in chat.stdout
        dream = cli(settings, "dream", "--json")
        assert dream.returncode == 0, dream.stderr
        found = cli(settings, "garden", "search", "minimal code", "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["hits"][0]["content"] == "I prefer minimal code"
