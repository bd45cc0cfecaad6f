"""Honest evaluation of the trained models against the chibi engine (the ceiling).

For N unseen random specs (drawn the way the training data was, with a seed no dataset uses), each model draws
an image from the spec: the chibi engine renders it, the diffusion model gets the prompt the engine builds from
it (text-to-image, through the real pipeline call), the GAN gets the spec's attributes as its condition. The
attribute classifier then grades every image:

- conditional accuracy: how often the asked-for hair colour, hair style, expression and skin tone are what the
  classifier sees, and how many asked-for items it finds (recall) and how many it sees that were not asked
  (precision);
- Fréchet distance on the classifier's pooled features against renders of a second set of unseen specs;
- sampling speed on this CPU (images/s, one thread per process as measured here, batch as stated).

    python -m bench.bench_training                       # the shipped models
    python -m bench.bench_training --diffusion RUN/pipeline --gan RUN/model --classifier RUN/model

Writes bench/results/training.json and an eval grid per model to docs/training/.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generation.chibi.engine import ChibiEngine
from generation.diffusion.prompting import build_prompt
from generation.spec import AvatarSpec
from generation.training import classifier as cls
from generation.training import dataset, gan
from generation.training.common import grid_png
from generation.training.labels import labels_of
from generation.training.shipped import CLASSIFIER_FOLDER, DIFFUSION_FOLDER, GAN_FOLDER

ROOT = Path(__file__).resolve().parent.parent


def eval_specs(n: int, salt: str) -> list[AvatarSpec]:
    return [dataset.random_training_spec(random.Random(f"eval:{salt}:{i}")) for i in range(n)]


def chibi_images(specs: list[AvatarSpec], size: int = 64) -> np.ndarray:
    engine = ChibiEngine()
    return np.stack([engine.render_rgba(s, size)[..., :3] for s in specs])


def diffusion_images(
    folder: Path, specs: list[AvatarSpec], steps: int, guidance: float, batch: int = 16
) -> np.ndarray:
    from generation.diffusion.config import DiffusionConfig
    from generation.diffusion.loader import load_pipelines
    from generation.training.diffusion import sample

    config = DiffusionConfig.from_options({"model": str(folder), "warmup": "false"})
    pipe = load_pipelines(config).text2img
    pipe.set_progress_bar_config(disable=True)
    out = []
    for start in range(0, len(specs), batch):
        chunk = specs[start : start + batch]
        prompts = [build_prompt(s, style=config.style).prompt for s in chunk]
        out.append(sample(pipe, prompts, seed=start, steps=steps, guidance=guidance))
    return np.concatenate(out)


def gan_images(folder: Path, specs: list[AvatarSpec]) -> np.ndarray:
    generator = gan.load_generator(folder)
    return gan.generate(generator, [labels_of(s) for s in specs], [s.seed for s in specs])


def timed(fn: Any, count: int) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, count / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256, help="unseen specs per model (default 256)")
    ap.add_argument("--diffusion", type=Path, default=DIFFUSION_FOLDER)
    ap.add_argument("--gan", type=Path, default=GAN_FOLDER)
    ap.add_argument("--classifier", type=Path, default=CLASSIFIER_FOLDER)
    ap.add_argument("--steps", type=int, default=20, help="diffusion sampling steps (default 20)")
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/training.json")
    ap.add_argument("--grids", type=Path, default=ROOT / "docs/training")
    args = ap.parse_args()

    torch.manual_seed(0)
    specs = eval_specs(args.n, "asked")
    reference = chibi_images(eval_specs(max(args.n, 256), "reference"))
    model = cls.load_classifier(args.classifier)
    asked = [labels_of(s) for s in specs]
    ref_features = cls.score(
        model, reference, [labels_of(s) for s in eval_specs(len(reference), "reference")]
    ).features

    results: dict[str, Any] = {
        "n": args.n,
        "threads": torch.get_num_threads(),
        "diffusion_steps": args.steps,
        "guidance": args.guidance,
        "models": {},
    }
    makers = {
        "chibi_engine": lambda: chibi_images(specs),
        "diffusion": lambda: diffusion_images(args.diffusion, specs, args.steps, args.guidance),
        "gan": lambda: gan_images(args.gan, specs),
    }
    for name, make in makers.items():
        images, per_s = timed(make, len(specs))
        scores = cls.score(model, images, asked)
        row = {
            **scores.accuracy(),
            "frechet": round(cls.frechet_distance(scores.features, ref_features), 3),
            "images_per_s": round(per_s, 2),
        }
        results["models"][name] = row
        grid_png(images[:32], args.grids / f"eval_{name}.png", columns=8, scale=2)
        print(name, json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("saved", args.out)


if __name__ == "__main__":
    main()
