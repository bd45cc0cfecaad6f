"""The diffusers engine: Stable Diffusion (SD1.5-class and SDXL-class) text2img, img2img and inpaint, batched.

Importing this package does not import torch: the configuration and the prompt builder are plain Python,
so the bot process can build a :class:`DiffusionConfig` and its :class:`~generation.jobs.EngineSpec`. The
engine itself (:class:`generation.diffusion.engine.DiffusionEngine`) is imported by the worker only.
"""

from generation.diffusion.config import DiffusionConfig, DiffusionConfigError, LoraSpec
from generation.diffusion.prompting import PromptPair, build_prompt

__all__ = ["DiffusionConfig", "DiffusionConfigError", "LoraSpec", "PromptPair", "build_prompt"]
