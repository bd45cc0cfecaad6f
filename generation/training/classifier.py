"""The attribute classifier: a small CNN trained on renders that names hair colour, hair style, expression,
skin tone and items. It grades generated images (conditional accuracy: did the model draw what was asked?) and
its pooled features give a Fréchet distance between generated images and held-out renders (an FID on our own
domain: the usual Inception network is a download, and it knows nothing of chibi art).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from generation.training import dataset
from generation.training.common import Run, batches, cosine_lr, images_tensor, progress_bar, time_is_up
from generation.training.labels import HEADS, IGNORE, ITEMS, Labels

__all__ = ["AttributeClassifier", "Scores", "frechet_distance", "load_classifier", "score", "train"]

FORMAT = 1
ITEM_THRESHOLD = 0.5


class AttributeClassifier(nn.Module):
    item_bias: torch.Tensor

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        chans = [3, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(chans):
            layers += [
                nn.Conv2d(a, b, 3, padding=1),
                nn.BatchNorm2d(b),
                nn.ReLU(),
                nn.Conv2d(b, b, 3, stride=2, padding=1),
                nn.BatchNorm2d(b),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*layers)
        self.features = width * 8
        self.heads = nn.ModuleDict({h: nn.Linear(self.features, len(n)) for h, n in HEADS.items()})
        self.items = nn.Linear(self.features, len(ITEMS))
        # log of the positive weight items were trained with: subtracted, so sigmoid(logit) is a probability
        self.register_buffer("item_bias", torch.zeros(len(ITEMS)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        f = self.embed(x)
        logits = {h: layer(f) for h, layer in self.heads.items()}
        logits["items"] = self.items(f) - self.item_bias
        return logits, f


def train(
    data: Path,
    out: Path,
    *,
    steps: int = 600,
    batch: int = 64,
    lr: float = 2e-3,
    max_minutes: float | None = None,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Train on the train split, report accuracy on the held-out split, save to ``out``."""
    from generation.training.gan import label_arrays  # the same label arrays the GAN conditions on

    torch.manual_seed(seed)
    run = Run.open(out, device)
    images, records = dataset.load_train(data)
    _, heads, items = label_arrays([r.spec for r in records])
    saved = out / "model"
    # running again goes on from the saved model (a classifier is cheap to train; no optimizer state kept)
    model = (
        load_classifier(saved).train() if (saved / "classifier.json").is_file() else AttributeClassifier()
    ).to(run.device)
    model.item_bias.zero_()  # training sees raw logits; the bias is set again at the end
    # items are rare (each is on ~4% of images): weigh positives so the head does not learn "never"
    positives = items.mean(axis=0).clip(1e-3, None)
    pos_weight = torch.from_numpy(((1 - positives) / positives).clip(1.0, 30.0).astype(np.float32)).to(
        run.device
    )
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    bar = progress_bar(steps, 0, "classifier", run.main)
    rng = np.random.default_rng(seed)
    completed = 0
    for step, idx in zip(range(steps), batches(len(images), batch, seed), strict=False):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, 50)
        x = images_tensor(images[idx]).to(run.device)
        # small shifts, so generated images a few pixels off still read right
        dy, dx = rng.integers(-3, 4, size=2)
        x = torch.roll(x, shifts=(int(dy), int(dx)), dims=(2, 3))
        logits, _ = model(x)
        h = torch.from_numpy(heads[idx]).to(run.device)
        loss = F.binary_cross_entropy_with_logits(
            logits["items"], torch.from_numpy(items[idx]).to(run.device), pos_weight=pos_weight
        )
        for k, head in enumerate(HEADS):
            loss = loss + F.cross_entropy(logits[head], h[:, k], ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.step_done(bar, step, 25, loss=loss.item())
        completed = step + 1
        if time_is_up(run, max_minutes):
            break
    bar.close()
    model.eval()
    model.item_bias.fill_(_item_threshold(model, images[:3000], items[:3000]))
    test_images, test_records = dataset.load_split(data, "test")
    held = score(model, test_images, [_labels(r.spec) for r in test_records])
    summary = {"steps": completed, "minutes": round(run.elapsed() / 60, 1), "held_out": held.accuracy()}
    save_classifier(model, out / "model", {"training": summary})
    run.close()
    return summary


@torch.no_grad()
def _item_threshold(model: AttributeClassifier, images: np.ndarray, items: np.ndarray) -> float:
    """The logit threshold with the best F1 on (a slice of) the training images: positives were weighted up
    in training, so 0 is not the right cut; the held-out split stays unseen for the report."""
    raw = np.concatenate(
        [model(images_tensor(images[i : i + 256]))[0]["items"].numpy() for i in range(0, len(images), 256)]
    )
    best, best_f1 = 0.0, -1.0
    for cut in np.arange(-1.0, 4.01, 0.25):
        on = raw > cut
        hits = float((on & (items > 0)).sum())
        precision, recall = hits / max(on.sum(), 1), hits / max(items.sum(), 1)
        f1 = 2 * precision * recall / (precision + recall + 1e-9)
        if f1 > best_f1:
            best, best_f1 = float(cut), f1
    return best


def _labels(spec: dict[str, Any] | None) -> Labels:
    from generation.training.labels import labels_of

    if spec is None:
        raise dataset.DatasetError("the classifier trains on chibi renders (their specs are its labels)")
    return labels_of(spec)


def save_classifier(model: AttributeClassifier, folder: Path, provenance: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = {
        k: v.detach().to(torch.float16).cpu().contiguous()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    save_file(weights, str(folder / "classifier.safetensors"))
    config = {
        "format": FORMAT,
        "heads": {h: list(n) for h, n in HEADS.items()},
        "items": list(ITEMS),
        **provenance,
    }
    (folder / "classifier.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def load_classifier(folder: Path) -> AttributeClassifier:
    from safetensors.torch import load_file

    config = json.loads((folder / "classifier.json").read_text(encoding="utf-8"))
    if config.get("format") != FORMAT or config["items"] != list(ITEMS):
        raise ValueError(f"{folder}: the classifier was trained on a different catalog; retrain it")
    model = AttributeClassifier()
    weights = {k: v.float() for k, v in load_file(str(folder / "classifier.safetensors")).items()}
    model.load_state_dict(weights, strict=False)
    return model.eval()


@dataclass
class Scores:
    """Per-head right/total counts for asked-for attributes, item recall and precision, and features."""

    right: dict[str, int]
    total: dict[str, int]
    items_found: int
    items_asked: int
    items_extra: int
    items_said: int
    features: np.ndarray

    def accuracy(self) -> dict[str, float]:
        out = {
            h: round(self.right[h] / self.total[h], 4) if self.total[h] else float("nan") for h in self.right
        }
        out["items_recall"] = (
            round(self.items_found / self.items_asked, 4) if self.items_asked else float("nan")
        )
        precision = (
            (self.items_said - self.items_extra) / self.items_said if self.items_said else float("nan")
        )
        out["items_precision"] = round(precision, 4)
        return out


@torch.no_grad()
def score(model: AttributeClassifier, images: np.ndarray, asked: list[Labels]) -> Scores:
    """Grade images (N, 64, 64, 3) uint8 against what was asked for each."""
    right = dict.fromkeys(HEADS, 0)
    total = dict.fromkeys(HEADS, 0)
    found = asked_n = extra = said = 0
    feats = []
    for start in range(0, len(images), 256):
        logits, f = model(images_tensor(images[start : start + 256]))
        feats.append(f.numpy())
        preds = {h: logits[h].argmax(dim=1).numpy() for h in HEADS}
        item_on = (torch.sigmoid(logits["items"]) > ITEM_THRESHOLD).numpy()
        for k, labels in enumerate(asked[start : start + 256]):
            for h in HEADS:
                if labels.heads[h] != IGNORE:
                    total[h] += 1
                    right[h] += int(preds[h][k] == labels.heads[h])
            wanted = set(labels.items)
            seen = set(np.flatnonzero(item_on[k]).tolist())
            found += len(wanted & seen)
            asked_n += len(wanted)
            said += len(seen)
            extra += len(seen - wanted)
    return Scores(
        right, total, found, asked_n, extra, said, np.concatenate(feats) if feats else np.zeros((0, 1))
    )


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula)."""
    from scipy import linalg

    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = np.real(linalg.sqrtm(s1 @ s2))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
