"""What packagers and library users get: the licence, true notices, and our types (py.typed) in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_license_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert 'license = { text = "Apache-2.0" }' in (ROOT / "pyproject.toml").read_text()


def test_model_notices_say_which_model_is_the_default() -> None:
    from kgents.resonance.embedders import DEFAULT_EMBEDDER
    from kgents.resonance.static import MODELS_DIR

    for folder in MODELS_DIR.iterdir():
        notice = (folder / "NOTICE").read_text()
        first = notice.splitlines()[0]
        assert ("the default" in first) == (folder.name == DEFAULT_EMBEDDER), first
        if (folder / "model.safetensors").exists():  # a static model (minilm-onnx holds only a tokenizer)
            assert "unchanged" not in notice and "29,525" in notice, "the trimmed vocabulary is stated"


@pytest.mark.slow
def test_the_wheel_carries_py_typed_license_and_notices(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("kgents-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "kgents/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    models = ("minilm-static-256", "minilm-mpnet-static-384", "minilm-onnx")
    assert {f"kgents/resonance/models/{m}/NOTICE" for m in models} <= names
    assert "kgents/resonance/models/minilm-onnx/tokenizer.json" in names
