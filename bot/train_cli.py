"""``chibify dataset ...`` and ``chibify train ...``: build training data and train Chibify's own models.

They run in the foreground with progress bars; every training run lives in its own folder (``--out``) with a
resumable checkpoint, a loss log and sample grids, so running the same command again goes on where it stopped.
On a machine with several GPUs, start them under torchrun, e.g.
``torchrun --nproc-per-node 4 -m bot.cli train diffusion --data DIR --out RUN``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bot.errors import BadInput

__all__ = ["add_parsers", "run"]

COMMANDS = ("dataset", "train")


def add_parsers(sub: Any) -> None:
    ds = sub.add_parser(
        "dataset", help="build a training dataset (chibi renders, or your own captioned images)"
    )
    dss = ds.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    b = dss.add_parser(
        "build",
        help="render COUNT avatars with English and Chinese captions and their specs (5%% held out)",
        description="Render random avatars with captions (English, Chinese, and the prompt the diffusion "
        "engine builds) and their specs, or with --from-folder turn your own images with .txt captions "
        "beside them into the same layout.",
    )
    b.add_argument("--out", type=Path, required=True, metavar="DIR", help="a new, empty folder")
    b.add_argument("--count", type=int, default=30000, metavar="N", help="how many renders (default 30000)")
    b.add_argument("--size", type=int, default=64, metavar="S", help="pixels, 32-1024 (default 64)")
    b.add_argument("--seed", type=int, default=0, help="same seed, same dataset (default 0)")
    b.add_argument("--workers", type=int, default=2, metavar="K", help="render processes (default 2)")
    b.add_argument(
        "--from-folder",
        type=Path,
        metavar="SRC",
        help="use your own images instead: each needs a caption in a .txt file of the same name",
    )

    t = sub.add_parser("train", help="train a model: diffusion, gan or classifier (resumable)")
    ts = t.add_subparsers(dest="train_command", metavar="MODEL", required=True)
    for name, helptext, steps, batch, lr in (
        ("diffusion", "a small text-to-image diffusion model (a diffusers pipeline folder)", 2400, 32, 5e-4),
        ("gan", "a conditional GAN, the fast 'surprise me' engine", 2500, 32, 2e-4),
        ("classifier", "the attribute classifier used to grade generated images", 600, 64, 2e-3),
    ):
        p = ts.add_parser(name, help=helptext, description=f"Train {helptext}.")
        p.add_argument(
            "--data", type=Path, required=True, metavar="DIR", help="a dataset (chibify dataset build)"
        )
        p.add_argument(
            "--out", type=Path, required=True, metavar="RUN", help="the run folder (resumes if it exists)"
        )
        p.add_argument("--steps", type=int, default=steps, help=f"optimizer steps in all (default {steps})")
        p.add_argument("--batch", type=int, default=batch, help=f"images per step (default {batch})")
        p.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr:g})")
        p.add_argument(
            "--max-minutes",
            type=float,
            metavar="M",
            help="stop after M minutes (checkpointed; run again to go on)",
        )
        p.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu or cuda")
        p.add_argument("--seed", type=int, default=0)
        if name != "classifier":
            p.add_argument(
                "--no-bf16", action="store_true", help="train in float32 on a GPU (bf16 is the default)"
            )
            p.add_argument(
                "--sample-every", type=int, default=400, metavar="N", help="sample grid every N steps"
            )
            p.add_argument("--export", type=Path, metavar="DIR", help="where to save the finished model")
        if name == "diffusion":
            p.add_argument("--vae-steps", type=int, default=800, help="autoencoder steps first (default 800)")
            p.add_argument(
                "--init",
                type=Path,
                metavar="PIPELINE",
                help="fine-tune this model folder (e.g. the shipped chibify-mini) instead of starting from scratch",
            )
            p.add_argument(
                "--noise-offset",
                type=float,
                default=0.0,
                metavar="X",
                help="offset noise (e.g. 0.1): lets the prompt decide overall colours such as skin (default 0)",
            )


def run(args: argparse.Namespace) -> int:
    from generation.training.dataset import DatasetError

    try:
        if args.command == "dataset":
            summary = _dataset(args)
        else:
            summary = _train(args)
    except DatasetError as exc:
        raise BadInput(str(exc).rstrip(".") + ".", "") from None
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


def _dataset(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from generation.training import dataset

    if args.from_folder is not None:
        with tqdm(desc="images", unit="img") as bar:
            return dataset.build_from_folder(args.from_folder, args.out, args.size, progress=bar.update)
    if args.workers < 1:
        raise BadInput("--workers must be at least 1.", "")
    with tqdm(total=args.count, desc="renders", unit="img") as bar:
        return dataset.build_renders(
            args.out, args.count, args.size, args.seed, args.workers, progress=bar.update
        )


def _train(args: argparse.Namespace) -> dict[str, Any]:
    for flag in ("steps", "batch"):
        if getattr(args, flag) < 1:
            raise BadInput(f"--{flag} must be at least 1.", "")
    if args.lr <= 0:
        raise BadInput("--lr must be positive.", "")
    common: dict[str, Any] = {
        "steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "max_minutes": args.max_minutes,
        "device": args.device,
        "seed": args.seed,
    }
    if args.train_command == "classifier":
        from generation.training import classifier

        return classifier.train(args.data, args.out, **common)
    common.update(bf16=not args.no_bf16, sample_every=args.sample_every, export=args.export)
    if args.train_command == "gan":
        from generation.training import gan

        return gan.train(args.data, args.out, **common)
    from generation.training import diffusion

    if args.init is not None and not args.init.is_dir():
        raise BadInput(f"--init {args.init}: no such model folder.", "")
    if not 0.0 <= args.noise_offset <= 1.0:
        raise BadInput("--noise-offset must be between 0 and 1.", "")
    return diffusion.train(
        args.data,
        args.out,
        vae_steps=args.vae_steps,
        init=args.init,
        noise_offset=args.noise_offset,
        **common,
    )
