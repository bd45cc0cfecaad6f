"""What the training commands share: run folders with resumable checkpoints, a loss log, progress, devices,
optional DDP (``torchrun --nproc-per-node N``), sample grids and fp16 safetensors export."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = ["Run", "cosine_lr", "grid_png", "images_tensor", "to_uint8"]


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def images_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1]: what every model here reads."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def grid_png(images: np.ndarray, path: Path, columns: int = 8, scale: int = 2) -> None:
    """Save (N, H, W, 3) uint8 images as one grid PNG, each tile scaled up ``scale`` times (nearest)."""
    n, h, w, _ = images.shape
    rows = math.ceil(n / columns)
    sheet = Image.new("RGB", (columns * w * scale, rows * h * scale), (255, 255, 255))
    for i, img in enumerate(images):
        tile = Image.fromarray(img).resize((w * scale, h * scale), Image.Resampling.NEAREST)
        sheet.paste(tile, ((i % columns) * w * scale, (i // columns) * h * scale))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


@dataclass
class Run:
    """One training run's folder: ``checkpoint.pt`` (latest, written atomically), ``loss.jsonl``, ``samples/``.

    Under torchrun (``WORLD_SIZE`` > 1) every process trains on its own shard of each batch and only rank 0
    writes files.
    """

    out: Path
    device: torch.device
    rank: int = 0
    world: int = 1
    started: float = 0.0

    @classmethod
    def open(cls, out: Path, device: str = "auto") -> Run:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dev = torch.device(device)
        if world > 1:
            import torch.distributed as dist

            local = int(os.environ.get("LOCAL_RANK", "0"))
            if dev.type == "cuda":
                torch.cuda.set_device(local)
                dev = torch.device("cuda", local)
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
        return cls(out=out, device=dev, rank=rank, world=world, started=time.monotonic())

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self, bf16: bool) -> AbstractContextManager[Any]:
        if bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            return DistributedDataParallel(module, device_ids=ids)
        return module

    # --- checkpoints --------------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def load_checkpoint(self) -> dict[str, Any] | None:
        if not self.checkpoint_path.is_file():
            return None
        state: dict[str, Any] = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        return state

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        if not self.main:
            return
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)

    def log(self, row: dict[str, Any]) -> None:
        if not self.main:
            return
        with (self.out / "loss.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def step_done(self, bar: Any, step: int, every: int, **figures: float | str) -> None:
        """After an optimizer step: advance the progress bar (losses shown to 4 places) and, every
        ``every`` steps, append the figures with the step and the elapsed seconds to ``loss.jsonl``."""
        bar.update(1)
        bar.set_postfix({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in figures.items()})
        if step % every == 0:
            rounded = {k: round(v, 5) if isinstance(v, float) else v for k, v in figures.items()}
            self.log({"step": step, **rounded, "seconds": round(self.elapsed(), 1)})

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def progress_bar(total: int, initial: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True)


def batches(n: int, batch: int, seed: int, rank: int = 0, world: int = 1) -> Iterator[np.ndarray]:
    """Endless shuffled index batches; each DDP rank gets its own slice of every global batch."""
    rng = np.random.default_rng(seed)
    per_rank = max(1, batch // world)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch + 1, batch):
            chunk = order[start : start + batch]
            yield chunk[rank * per_rank : (rank + 1) * per_rank]


def time_is_up(run: Run, max_minutes: float | None) -> bool:
    return max_minutes is not None and run.elapsed() > max_minutes * 60


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    inner = getattr(module, "module", None)
    return inner if isinstance(inner, torch.nn.Module) else module


Callback = Callable[[int], None]
