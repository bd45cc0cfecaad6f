"""Where the models trained for Chibify ship inside the package (see docs/model_card.md)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CLASSIFIER_FOLDER", "DIFFUSION_FOLDER", "GAN_FOLDER", "WEIGHTS"]

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
DIFFUSION_FOLDER = WEIGHTS / "chibify-mini"  # a diffusers StableDiffusionPipeline folder
GAN_FOLDER = WEIGHTS / "chibify-gan"  # generator.safetensors + gan.json
CLASSIFIER_FOLDER = WEIGHTS / "attribute-classifier"  # classifier.safetensors + classifier.json
