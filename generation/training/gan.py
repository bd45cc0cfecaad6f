"""A conditional GAN trained on the same renders: the fast "surprise me" engine.

Generator: noise (64) + the attribute condition (hair colour, hair style, expression, skin tone one-hots and
the items' multi-hot; :mod:`generation.training.labels`) -> 64 x 64 RGB through four upsampling conv blocks.
Discriminator: a spectral-normalised conv net with a projection head (it scores image and condition together)
and an auxiliary classifier (it names the attributes), trained with the hinge loss; the generator is also
trained to make the auxiliary classifier name what was asked (AC-GAN), which is what makes it follow the
condition. One forward pass per image: hundreds of images per second on a CPU.

Saved as ``generator.safetensors`` (fp16) + ``gan.json`` in a folder; :class:`GanEngine` serves it.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from generation.training import dataset
from generation.training.common import (
    Run,
    batches,
    grid_png,
    images_tensor,
    progress_bar,
    time_is_up,
    to_uint8,
)
from generation.training.labels import (
    HEADS,
    IGNORE,
    ITEMS,
    Labels,
    condition_size,
    condition_vector,
    labels_of,
)

__all__ = ["NOISE", "Discriminator", "GanEngine", "Generator", "load_generator", "train"]

NOISE = 64
FORMAT = 1


class Generator(nn.Module):
    def __init__(self, cond: int, noise: int = NOISE, width: int = 256) -> None:
        super().__init__()
        self.width = width
        self.embed = nn.Sequential(nn.Linear(cond, 128), nn.ReLU())
        self.fc = nn.Linear(noise + 128, 4 * 4 * width)
        chans = [width, width // 2, width // 4, width // 8, width // 16]
        blocks: list[nn.Module] = []
        for a, b in itertools.pairwise(chans):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(a, b, 3, padding=1),
                nn.BatchNorm2d(b),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), *blocks)
        self.out = nn.Conv2d(chans[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.embed(c)], dim=1)).view(-1, self.width, 4, 4)
        return torch.tanh(self.out(self.body(h)))


class Discriminator(nn.Module):
    def __init__(self, cond: int, width: int = 16) -> None:
        super().__init__()
        chans = [3, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(chans):
            layers += [spectral_norm(nn.Conv2d(a, b, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)  # 64 -> 4
        feat = width * 8 * 4 * 4
        self.score = spectral_norm(nn.Linear(feat, 1))
        self.project = spectral_norm(nn.Linear(cond, feat, bias=False))
        self.aux = nn.ModuleDict({head: nn.Linear(feat, len(names)) for head, names in HEADS.items()})
        self.aux_items = nn.Linear(feat, len(ITEMS))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self.body(x).flatten(1)
        score = self.score(h).squeeze(1) + (self.project(c) * h).sum(dim=1)
        logits = {head: layer(h) for head, layer in self.aux.items()}
        logits["items"] = self.aux_items(h)
        return score, logits


def aux_loss(logits: dict[str, torch.Tensor], heads: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the single-choice heads (IGNORE skipped) plus BCE over the items."""
    loss = F.binary_cross_entropy_with_logits(logits["items"], items)
    for k, head in enumerate(HEADS):
        loss = loss + F.cross_entropy(logits[head], heads[:, k], ignore_index=IGNORE)
    return loss


def label_arrays(specs: list[dict[str, Any] | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(conditions, head labels, item multi-hots) for dataset records' specs."""
    labels = [labels_of(s) for s in specs if s is not None]
    if len(labels) != len(specs):
        raise dataset.DatasetError("the GAN trains on chibi renders (their specs are its conditions)")
    conds = np.stack([condition_vector(lab) for lab in labels])
    heads = np.array([[lab.heads[h] for h in HEADS] for lab in labels], dtype=np.int64)
    items = np.stack([lab.items_multi_hot() for lab in labels])
    return conds, heads, items


def train(
    data: Path,
    out: Path,
    *,
    steps: int = 6000,
    batch: int = 64,
    lr: float = 2e-4,
    max_minutes: float | None = None,
    sample_every: int = 1000,
    checkpoint_every: int = 200,
    device: str = "auto",
    bf16: bool = True,
    seed: int = 0,
    export: Path | None = None,
) -> dict[str, Any]:
    """Train (or resume) a conditional GAN in ``out``; exports to ``export`` (default ``out/model``)."""
    torch.manual_seed(seed)
    run = Run.open(out, device)
    state = run.load_checkpoint() or {}
    images, records = dataset.load_train(data)
    conds, heads, items = label_arrays([r.spec for r in records])
    size = images.shape[1]
    if size != 64:
        raise dataset.DatasetError(f"the GAN is built for 64 px images; this dataset is {size} px")
    gen, disc = Generator(condition_size()), Discriminator(condition_size())
    ema = Generator(condition_size())
    if "gen" in state:
        gen.load_state_dict(state["gen"])
        disc.load_state_dict(state["disc"])
        ema.load_state_dict(state["ema"])
    else:
        ema.load_state_dict(gen.state_dict())
    for m in (gen, disc, ema):
        m.to(run.device)
    ema.eval().requires_grad_(False)
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr * 2, betas=(0.0, 0.9))
    if "opt_g" in state:
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
    gen_ddp, disc_ddp = run.wrap(gen), run.wrap(disc)
    held = dataset.load_split(data, "test", limit=32)[1]
    sample_c = torch.from_numpy(label_arrays([r.spec for r in held])[0]).to(run.device)
    sample_z = torch.randn(len(held), NOISE, generator=torch.Generator().manual_seed(seed)).to(run.device)

    done = int(state.get("step", 0))
    bar = progress_bar(steps, done, "gan", run.main)
    completed = done

    def snapshot(step: int) -> None:
        state.update(
            gen=gen.state_dict(),
            disc=disc.state_dict(),
            ema=ema.state_dict(),
            opt_g=opt_g.state_dict(),
            opt_d=opt_d.state_dict(),
            step=step,
        )
        run.save_checkpoint(state)

    order = batches(len(images), batch, seed + done, run.rank, run.world)
    for step, idx in zip(range(done, steps), order, strict=False):
        real = images_tensor(images[idx]).to(run.device)
        c = torch.from_numpy(conds[idx]).to(run.device)
        h = torch.from_numpy(heads[idx]).to(run.device)
        it = torch.from_numpy(items[idx]).to(run.device)
        z = torch.randn(len(idx), NOISE, device=run.device)
        with run.autocast(bf16):
            fake = gen_ddp(z, c)
            # one discriminator call for real and fake (DDP wants one forward per backward)
            scores, both_logits = disc_ddp(torch.cat([real, fake.detach()]), torch.cat([c, c]))
            real_score, fake_score = scores.split(len(idx))
            real_logits = {k: v[: len(idx)] for k, v in both_logits.items()}
            d_loss = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
            d_loss = d_loss + aux_loss(real_logits, h, it)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with run.autocast(bf16):
            score, logits = disc_ddp(fake, c)
            g_loss = -score.mean() + aux_loss(logits, h, it)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), gen.parameters(), strict=True):
                e.lerp_(p, 1 - min(0.999, (1 + step) / (10 + step)))
            for buffer, source in zip(ema.buffers(), gen.buffers(), strict=True):
                buffer.copy_(source)
        run.step_done(bar, step, 25, d_loss=d_loss.item(), g_loss=g_loss.item())
        completed = step + 1
        if completed % checkpoint_every == 0:
            snapshot(completed)
        if run.main and sample_every and (completed % sample_every == 0 or completed == steps):
            with torch.no_grad():
                grid_png(to_uint8(ema(sample_z, sample_c)), out / "samples" / f"step_{completed:06d}.png")
        if time_is_up(run, max_minutes):
            break
    bar.close()
    snapshot(completed)
    summary: dict[str, Any] = {"step": completed, "steps": steps, "minutes": round(run.elapsed() / 60, 1)}
    if completed >= steps and run.main:
        target = export or out / "model"
        save_generator(ema, target, {"training": summary, "dataset": dataset.read_manifest(data)})
        summary["exported"] = str(target)
    run.close()
    return summary


def save_generator(gen: Generator, folder: Path, provenance: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to(torch.float16).cpu().contiguous() for k, v in gen.state_dict().items()}
    weights = {k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}
    save_file(weights, str(folder / "generator.safetensors"))
    config = {
        "format": FORMAT,
        "noise": NOISE,
        "width": gen.width,
        "condition": {"heads": {h: list(v) for h, v in HEADS.items()}, "items": list(ITEMS)},
        **provenance,
    }
    (folder / "gan.json").write_text(
        json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def load_generator(folder: Path) -> Generator:
    from safetensors.torch import load_file

    config_path = folder / "gan.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} holds no GAN (gan.json): train one with `chibify train gan`")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("format") != FORMAT:
        raise ValueError(f"{folder}: GAN format {config.get('format')} is not {FORMAT}")
    if config["condition"] != {"heads": {h: list(v) for h, v in HEADS.items()}, "items": list(ITEMS)}:
        raise ValueError(f"{folder}: the GAN was trained on a different catalog; retrain it")
    gen = Generator(condition_size(), noise=int(config["noise"]), width=int(config["width"]))
    weights = {k: v.float() for k, v in load_file(str(folder / "generator.safetensors")).items()}
    gen.load_state_dict(weights, strict=False)
    return gen.eval()


def generate(gen: Generator, labels: list[Labels], seeds: list[int]) -> np.ndarray:
    """(N, 64, 64, 3) uint8: one image per (labels, seed)."""
    c = torch.from_numpy(np.stack([condition_vector(lab) for lab in labels]))
    z = torch.stack([torch.randn(NOISE, generator=torch.Generator().manual_seed(s)) for s in seeds])
    with torch.no_grad():
        return to_uint8(gen(z, c))


class GanEngine:
    """The "surprise me" engine: the request's spec (its open fields decided by the seed) is the condition;
    64 px out, resized to the requested size. Runs in the worker process like every engine."""

    draws_selfie_spec = True  # the worker turns a selfie into request.spec first (engines.prepare_selfie)

    def __init__(self, model: str = "") -> None:
        from generation.training.shipped import GAN_FOLDER

        self.folder = Path(model) if model else GAN_FOLDER
        self.gen = load_generator(self.folder)

    def run_batch(self, requests: list[Any], progress: Any) -> list[Any]:
        from io import BytesIO

        from PIL import Image

        from generation.jobs import GenerationResult
        from generation.spec import AvatarSpec

        started = time.perf_counter()
        out: list[Any] = []
        from generation.engines import ChibiAdapter, selfie_prepared

        try:
            specs = [
                # a selfie: the photo decides the spec (analysed in memory, never written anywhere)
                (
                    ChibiAdapter.selfie_spec(r, AvatarSpec.from_json(r.spec).seed)
                    if r.init_image and not selfie_prepared(r)
                    else AvatarSpec.from_json(r.spec)
                ).resolved()
                for r in requests
            ]
            images = generate(self.gen, [labels_of(s) for s in specs], [s.seed for s in specs])
        except Exception as exc:
            return [exc for _ in requests]
        for index, (request, spec, rgb) in enumerate(zip(requests, specs, images, strict=True)):
            picture = Image.fromarray(rgb).resize((request.size, request.size), Image.Resampling.LANCZOS)
            buf = BytesIO()
            picture.save(buf, format="PNG")
            out.append(
                GenerationResult(
                    png=buf.getvalue(),
                    width=request.size,
                    height=request.size,
                    engine="gan",
                    model=self.folder.name,
                    spec=spec.to_json(),
                    run_s=time.perf_counter() - started,
                )
            )
            progress(index, 1, 1)
        return out


def random_labels(rng: random.Random) -> Labels:
    return labels_of(dataset.random_training_spec(rng))
