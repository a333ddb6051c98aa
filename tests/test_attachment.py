"""The face finds the server's home attachment through the package's entry point (issue 19: the face never
imports the server), and the adapter fits the port the face declares."""

from __future__ import annotations

from pathlib import Path

from kgents.config import Settings
from kgents.memory.attachment import AttachmentFactory, attach_home, should_attach
from kgents.server.attach import HomeAttachment


def test_the_installed_attachment_is_the_servers(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    attachment = attach_home(settings, "kent")
    assert isinstance(attachment, HomeAttachment)
    assert attachment.persona == "kent" and attachment.settings is settings
    _: AttachmentFactory = HomeAttachment  # mypy checks that the adapter fits the port


def test_only_an_embedded_home_is_attached_to(tmp_path: Path) -> None:
    assert should_attach(Settings(home=tmp_path))
    assert not should_attach(Settings(home=tmp_path, server_url="http://127.0.0.1:1"))
    assert not should_attach(Settings(home=tmp_path, qdrant_url="http://127.0.0.1:1"))
