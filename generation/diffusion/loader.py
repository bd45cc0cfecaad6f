"""Load the three pipelines (text2img, img2img, inpaint) for a :class:`DiffusionConfig`, sharing one set of
weights: the text-to-image pipeline is loaded, the other two are made with ``from_pipe`` (no copy).

Imports torch and diffusers: only the worker process imports this module.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generation.diffusion.config import DiffusionConfig, DiffusionConfigError

__all__ = ["Pipelines", "assemble", "load_pipelines", "resolve_device", "resolve_dtype"]

log = logging.getLogger(__name__)

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


@dataclass
class Pipelines:
    text2img: Any
    img2img: Any
    inpaint: Any
    device: torch.device
    dtype: torch.dtype
    family: str  # "sd15" or "sdxl"
    vae_scale_factor: int

    def for_mode(self, mode: str) -> Any:
        return {"text2img": self.text2img, "img2img": self.img2img, "inpaint": self.inpaint}[mode]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DiffusionConfigError(f"device {name!r} was asked for but this machine has no usable CUDA GPU")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name != "auto":
        dtype = _DTYPES[name]
        if device.type == "cpu" and dtype == torch.float16:
            raise DiffusionConfigError("float16 is not supported on the CPU: use float32 or bfloat16")
        return dtype
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _download_hint(what: str, name: str) -> str:
    return (
        f"{what} {name!r} is not a local folder and downloading is off. Give the path of a local diffusers "
        f"folder (one with model_index.json), or let Chibify download it from the Hugging Face Hub by setting "
        f"allow_download=true (CHIBIFY_DIFFUSION_ALLOW_DOWNLOAD=1)."
    )


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1


def _model_source(config: DiffusionConfig) -> str:
    """The string to hand ``from_pretrained``, after checking what can be checked without loading."""
    if not config.model:
        raise DiffusionConfigError(
            "no diffusion model configured: set model to a local diffusers folder "
            "(CHIBIFY_DIFFUSION_MODEL=/models/my-chibi-model)"
        )
    path = Path(config.model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise DiffusionConfigError(
                f"{str(path)!r} has no model_index.json: it is not a diffusers model folder. Single-file "
                f"checkpoints (.safetensors) need converting first (see docs/diffusion.md)."
            )
        return str(path)
    if path.is_file():
        raise DiffusionConfigError(
            f"{str(path)!r} is a single file; Chibify loads diffusers model folders (model_index.json). "
            f"Convert the checkpoint first (see docs/diffusion.md)."
        )
    if _looks_like_path(config.model):
        raise DiffusionConfigError(f"model folder {str(path)!r} does not exist")
    return config.model


def _lora_source(path_text: str, allow_download: bool) -> tuple[str, str | None]:
    path = Path(path_text).expanduser()
    if path.is_file():
        return str(path.parent), path.name
    if path.is_dir():
        return str(path), None
    if _looks_like_path(path_text) or path_text.endswith(".safetensors"):
        raise DiffusionConfigError(f"LoRA {path_text!r} does not exist")
    if not allow_download:
        raise DiffusionConfigError(_download_hint("LoRA", path_text))
    return path_text, None


def _scheduler(name: str, current: Any) -> Any:
    import diffusers

    if name == "default":
        return current
    config = current.config
    if name == "euler":
        return diffusers.EulerDiscreteScheduler.from_config(config)
    if name == "euler_a":
        return diffusers.EulerAncestralDiscreteScheduler.from_config(config)
    if name == "dpmpp_2m":
        return diffusers.DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++")
    if name == "dpmpp_2m_karras":
        return diffusers.DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", use_karras_sigmas=True
        )
    if name == "ddim":
        return diffusers.DDIMScheduler.from_config(config)
    if name == "unipc":
        return diffusers.UniPCMultistepScheduler.from_config(config)
    if name == "lcm":
        return diffusers.LCMScheduler.from_config(config)
    raise DiffusionConfigError(f"unknown scheduler {name!r}")


def load_pipelines(config: DiffusionConfig) -> Pipelines:
    """Load the model once, on the configured device and dtype, with its LoRAs and optimisations."""
    import diffusers
    from diffusers import AutoPipelineForText2Image

    source = _model_source(config)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    local_only = not config.allow_download
    extra: dict[str, Any] = {}
    if config.tiny_vae:
        vae_path = Path(config.tiny_vae).expanduser()
        if not vae_path.is_dir() and not config.allow_download:
            if _looks_like_path(config.tiny_vae):
                raise DiffusionConfigError(f"tiny VAE folder {str(vae_path)!r} does not exist")
            raise DiffusionConfigError(_download_hint("tiny VAE", config.tiny_vae))
        extra["vae"] = diffusers.AutoencoderTiny.from_pretrained(
            str(vae_path) if vae_path.is_dir() else config.tiny_vae,
            torch_dtype=dtype,
            local_files_only=local_only,
        )
    try:
        with warnings.catch_warnings():
            # diffusers >= 0.36 renamed torch_dtype to dtype; the old name works everywhere we support.
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            text2img: Any = AutoPipelineForText2Image.from_pretrained(
                source, torch_dtype=dtype, local_files_only=local_only, **extra
            )
    except (OSError, ValueError) as exc:
        if local_only and not Path(source).is_dir():
            raise DiffusionConfigError(_download_hint("model", source)) from exc
        raise
    family = "sdxl" if type(text2img).__name__ == "StableDiffusionXLPipeline" else "sd15"
    if type(text2img).__name__ not in ("StableDiffusionPipeline", "StableDiffusionXLPipeline"):
        raise DiffusionConfigError(
            f"{config.model!r} loads as {type(text2img).__name__}; Chibify runs Stable Diffusion 1.x/2.x and "
            f"SDXL-class pipelines"
        )
    if config.family != "auto" and config.family != family:
        raise DiffusionConfigError(
            f"family is set to {config.family} but {config.model!r} is an {family} model"
        )
    text2img.scheduler = _scheduler(config.scheduler, text2img.scheduler)

    if config.loras:
        names, weights = [], []
        for lora in config.loras:
            where, weight_name = _lora_source(lora.path, config.allow_download)
            text2img.load_lora_weights(
                where, weight_name=weight_name, adapter_name=lora.adapter_name, local_files_only=local_only
            )
            names.append(lora.adapter_name)
            weights.append(lora.weight)
        text2img.set_adapters(names, adapter_weights=weights)
        if config.fuse_loras:
            # Fold the LoRAs into the weights: no extra matmuls per step; the adapters are then dropped.
            text2img.fuse_lora(adapter_names=names, lora_scale=1.0)
            text2img.unload_lora_weights()
        log.info("LoRAs loaded: %s", ", ".join(f"{n}@{w:g}" for n, w in zip(names, weights, strict=True)))

    pipes = assemble(text2img, config, device=device, dtype=dtype)
    log.info(
        "diffusion model %s loaded (%s, %s on %s, scheduler %s)",
        config.display_model,
        family,
        str(dtype).removeprefix("torch."),
        device,
        type(text2img.scheduler).__name__,
    )
    return pipes


def assemble(
    text2img: Any, config: DiffusionConfig, *, device: torch.device, dtype: torch.dtype
) -> Pipelines:
    """Move a loaded text-to-image pipeline to ``device``, optimise it (SDPA, channels_last, compile) and make
    the img2img and inpaint pipelines from it with ``from_pipe`` (shared weights, no copy)."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    text2img.to(device)
    text2img.set_progress_bar_config(disable=True)
    _optimise(text2img, device, config)
    img2img = AutoPipelineForImage2Image.from_pipe(text2img)
    inpaint = AutoPipelineForInpainting.from_pipe(text2img)
    for pipe in (img2img, inpaint):
        pipe.set_progress_bar_config(disable=True)
    return Pipelines(
        text2img=text2img,
        img2img=img2img,
        inpaint=inpaint,
        device=device,
        dtype=dtype,
        family="sdxl" if type(text2img).__name__ == "StableDiffusionXLPipeline" else "sd15",
        vae_scale_factor=int(getattr(text2img, "vae_scale_factor", 8)),
    )


def _optimise(pipe: Any, device: torch.device, config: DiffusionConfig) -> None:
    """SDPA attention everywhere; channels_last on CUDA; torch.compile of the UNet when asked."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    try:
        pipe.unet.set_attn_processor(AttnProcessor2_0())
    except Exception as exc:  # e.g. a model with custom processors: keep its own
        log.warning("could not switch the UNet to SDPA attention: %s", exc)
    if device.type == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if config.compile:
        pipe.unet.compile(mode=config.compile_mode, fullgraph=False, dynamic=False)
