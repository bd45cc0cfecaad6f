"""Honest evaluation of the trained models against the chibi engine (the ceiling).

For N unseen random specs (drawn the way the training data was, with a seed no dataset uses), each model draws
an image from the spec: the chibi engine renders it; the diffusion model, through the real engine
(`DiffusionEngine.run_batch`, the worker's call), twice: text-to-image from the prompt the engine builds from the
spec (what the model learned alone), and img2img from the chibi render (the engine's default for a spec, what
`CHIBIFY_ENGINE=diffusion` users get); the GAN gets the spec's attributes as its condition. The attribute
classifier then grades every image:

- conditional accuracy: how often the asked-for hair colour, hair style, expression and skin tone are what the
  classifier sees, and how many asked-for items it finds (recall) and how many it sees that were not asked
  (precision);
- Fréchet distance on the classifier's pooled features against renders of a second set of unseen specs;
- sampling speed on this CPU (images/s, one thread per process as measured here, batch as stated).

    python -m bench.bench_training                       # the shipped models
    python -m bench.bench_training --diffusion RUN/pipeline --gan RUN/model --classifier RUN/model
    python -m bench.bench_training --tune-strength 0.3,0.4,0.5 --tune-guidance 3,4.5,6   # on 64 tuning specs

Writes bench/results/training.json and an eval grid per model to docs/training/.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from generation.chibi.engine import ChibiEngine
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


def diffusion_engine(folder: Path, batch: int = 16, **overrides: Any) -> Any:
    """The worker's diffusion engine on a model folder (its chibify.json settings, then ``overrides``)."""
    from generation.diffusion.config import DiffusionConfig
    from generation.diffusion.engine import DiffusionEngine

    options = {"model": str(folder), "warmup": "false", "max_batch": str(batch)}
    options.update({k: str(v) for k, v in overrides.items() if v is not None})
    return DiffusionEngine(DiffusionConfig.from_options(options))


def diffusion_images(engine: Any, specs: list[AvatarSpec], mode: str) -> np.ndarray:
    """(N, 64, 64, 3): one engine batch per 16 specs, ``mode`` text2img or img2img (from the chibi render)."""
    from generation.jobs import GenerationRequest

    out = []
    for start in range(0, len(specs), engine.max_batch):
        requests = [
            GenerationRequest(
                user_key="bench", spec=s.to_json(), engine="diffusion", size=64, metadata=(("mode", mode),)
            )
            for s in specs[start : start + engine.max_batch]
        ]
        for result in engine.run_batch(requests, lambda *_: None):
            if isinstance(result, BaseException):
                raise result
            picture = Image.open(io.BytesIO(result.png)).convert("RGB").resize((64, 64), Image.Resampling.BOX)
            out.append(np.asarray(picture))
    return np.stack(out)


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
    ap.add_argument("--steps", type=int, help="diffusion sampling steps (default: the model folder's)")
    ap.add_argument("--guidance", type=float, help="diffusion guidance (default: the model folder's)")
    ap.add_argument(
        "--tune-strength",
        metavar="S,S,...",
        help="only grade img2img at these strengths on 64 tuning specs (not the evaluation specs) and stop",
    )
    ap.add_argument(
        "--tune-guidance",
        metavar="G,G,...",
        help="only grade text2img at these guidance scales on the 64 tuning specs and stop",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/training.json")
    ap.add_argument("--grids", type=Path, default=ROOT / "docs/training")
    args = ap.parse_args()

    torch.manual_seed(0)
    model = cls.load_classifier(args.classifier)
    overrides = {"steps": args.steps, "guidance": args.guidance}
    tunes = [
        ("img2img", "img2img_strength", args.tune_strength),
        ("text2img", "guidance", args.tune_guidance),
    ]
    if args.tune_strength or args.tune_guidance:
        tuning = eval_specs(64, "tuning")
        for mode, key, values in tunes:
            for value in [float(x) for x in (values or "").split(",") if x.strip()]:
                engine = diffusion_engine(args.diffusion, **{**overrides, key: value})
                images = diffusion_images(engine, tuning, mode)
                scores = cls.score(model, images, [labels_of(s) for s in tuning])
                print(mode, key, value, json.dumps(scores.accuracy()))
        return
    specs = eval_specs(args.n, "asked")
    reference = chibi_images(eval_specs(max(args.n, 256), "reference"))
    asked = [labels_of(s) for s in specs]
    ref_features = cls.score(
        model, reference, [labels_of(s) for s in eval_specs(len(reference), "reference")]
    ).features

    engine = diffusion_engine(args.diffusion, **overrides)
    config = engine.config
    results: dict[str, Any] = {
        "n": args.n,
        "threads": torch.get_num_threads(),
        "diffusion_steps": config.steps,
        "guidance": config.guidance,
        "img2img_strength": config.img2img_strength,
        "models": {},
    }
    makers = {
        "chibi_engine": lambda: chibi_images(specs),
        "diffusion": lambda: diffusion_images(engine, specs, "text2img"),
        "diffusion_img2img": lambda: diffusion_images(engine, specs, "img2img"),
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
