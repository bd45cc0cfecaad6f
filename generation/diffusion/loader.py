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

from generation.diffusion.config import IP_ADAPTER_SUFFIXES, DiffusionConfig, DiffusionConfigError

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
    ip_adapter: str = ""  # the loaded IP-Adapter's name ("" = none)
    ip_hidden_states: bool = False  # the adapter reads the encoder's hidden states (Plus), not its embeds
    ip_neutral: torch.Tensor | None = None  # zero image embeds for one batch item, (1, 1, ...), on ``device``

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


_ENCODER_HINT = (
    "the folder of the IP-Adapter's CLIP image encoder (CLIPVisionModelWithProjection: config.json and "
    "model.safetensors), e.g. models/image_encoder from h94/IP-Adapter"
)


def _is_hub_name(text: str) -> bool:
    """Could ``text`` be a hub name (``owner/repo/...``) rather than a local path?"""
    return not (text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") < 1)


def _ip_adapter_source(text: str, allow_download: bool) -> tuple[str, str, str]:
    """``(folder or hub repo, subfolder, weight file name)`` for ``load_ip_adapter``.

    A local file, a local folder holding exactly one ``.safetensors``/``.bin`` file, or (with
    ``allow_download``) a hub name ``owner/repo[/subfolder...]/weight_name``."""
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() not in IP_ADAPTER_SUFFIXES:
            raise DiffusionConfigError(
                f"ip_adapter {text!r} is not a .safetensors or .bin file of IP-Adapter weights"
            )
        return str(path.parent), "", path.name
    if path.is_dir():
        found = sorted(
            x.name for x in path.iterdir() if x.is_file() and x.suffix.lower() in IP_ADAPTER_SUFFIXES
        )
        if len(found) == 1:
            return str(path), "", found[0]
        if not found:
            raise DiffusionConfigError(
                f"ip_adapter folder {str(path)!r} holds no .safetensors or .bin file: set ip_adapter to the "
                f"IP-Adapter weights file itself (e.g. ip-adapter_sd15.safetensors)"
            )
        raise DiffusionConfigError(
            f"ip_adapter folder {str(path)!r} holds several weight files ({', '.join(found)}): set ip_adapter "
            f"to the one to use"
        )
    parts = text.split("/")
    if not _is_hub_name(text) or len(parts) < 3 or Path(parts[-1]).suffix.lower() not in IP_ADAPTER_SUFFIXES:
        raise DiffusionConfigError(
            f"IP-Adapter weights {text!r} do not exist: set ip_adapter to a local .safetensors or .bin file "
            f"of IP-Adapter weights (or a folder holding one)"
        )
    if not allow_download:
        raise DiffusionConfigError(
            f"IP-Adapter {text!r} is not a local file and downloading is off. Download it yourself and give "
            f"the path of the weights file (e.g. /models/ip-adapter/models/ip-adapter_sd15.safetensors), or let "
            f"Chibify download it from the Hugging Face Hub by setting allow_download=true "
            f"(CHIBIFY_DIFFUSION_ALLOW_DOWNLOAD=1)."
        )
    return "/".join(parts[:2]), "/".join(parts[2:-1]), parts[-1]


def _ip_encoder_source(config: DiffusionConfig, where: str, subfolder: str) -> tuple[str, str]:
    """``(folder or hub repo, subfolder)`` of the CLIP image encoder: ``ip_adapter_encoder``, or diffusers'
    usual ``image_encoder`` folder next to the IP-Adapter weights."""
    text = config.ip_adapter_encoder.strip()
    if text:
        path = Path(text).expanduser()
        if path.is_dir():
            return str(path), ""
        if path.exists():
            raise DiffusionConfigError(f"ip_adapter_encoder {text!r} is a file: set it to " + _ENCODER_HINT)
        if not _is_hub_name(text):
            raise DiffusionConfigError(
                f"IP-Adapter image encoder folder {text!r} does not exist: set ip_adapter_encoder to "
                + _ENCODER_HINT
            )
        if not config.allow_download:
            raise DiffusionConfigError(
                f"IP-Adapter image encoder {text!r} is not a local folder and downloading is off. Set "
                f"ip_adapter_encoder to {_ENCODER_HINT}, or set allow_download=true "
                f"(CHIBIFY_DIFFUSION_ALLOW_DOWNLOAD=1)."
            )
        parts = text.split("/")
        return "/".join(parts[:2]), "/".join(parts[2:])
    if Path(where).is_dir():
        folder = Path(where) / subfolder / "image_encoder"
        if not folder.is_dir():
            raise DiffusionConfigError(
                f"no image encoder next to the IP-Adapter weights (looked for {str(folder)!r}): set "
                f"ip_adapter_encoder to {_ENCODER_HINT}"
            )
        return str(folder), ""
    return where, f"{subfolder}/image_encoder" if subfolder else "image_encoder"


def _check_ip_weights(file: Path) -> None:
    """A ``.safetensors`` file must hold ``image_proj.*`` and ``ip_adapter.*`` tensors (diffusers'
    ``load_ip_adapter`` would otherwise fail deep inside with a KeyError)."""
    if file.suffix.lower() != ".safetensors":
        return  # .bin: a pickled {"image_proj": ..., "ip_adapter": ...}; diffusers checks the two keys
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            keys = list(handle.keys())
    except Exception as exc:
        raise DiffusionConfigError(f"IP-Adapter weights {str(file)!r} cannot be read: {_brief(exc)}") from exc
    missing = [p for p in ("image_proj.", "ip_adapter.") if not any(k.startswith(p) for k in keys)]
    if missing:
        raise DiffusionConfigError(
            f"{str(file)!r} is not an IP-Adapter weights file: it has no {' or '.join(m + '*' for m in missing)} "
            f"tensors (a LoRA or a model checkpoint?). Set ip_adapter to IP-Adapter weights in diffusers "
            f"load_ip_adapter format, e.g. ip-adapter_sd15.safetensors from h94/IP-Adapter"
        )


def _brief(exc: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_ip_adapter(text2img: Any, config: DiffusionConfig, family: str) -> str:
    """Load the configured IP-Adapter and its image encoder into ``text2img``; returns the adapter's name."""
    from transformers import CLIPVisionModelWithProjection

    local_only = not config.allow_download
    where, subfolder, weight_name = _ip_adapter_source(config.ip_adapter.strip(), config.allow_download)
    if Path(where).is_dir():
        _check_ip_weights(Path(where) / subfolder / weight_name)
    enc_where, enc_subfolder = _ip_encoder_source(config, where, subfolder)
    shown = f"{enc_where}/{enc_subfolder}" if enc_subfolder else enc_where
    try:
        encoder = CLIPVisionModelWithProjection.from_pretrained(
            enc_where, subfolder=enc_subfolder, dtype=text2img.dtype, local_files_only=local_only
        )
    except Exception as exc:  # OSError (no files), config validation errors, size mismatches...
        raise DiffusionConfigError(
            f"IP-Adapter image encoder {shown!r} cannot be loaded ({_brief(exc)}): set "
            f"ip_adapter_encoder to {_ENCODER_HINT}"
        ) from exc
    # Registered before load_ip_adapter, which then keeps it (image_encoder_folder=None: nothing else is read).
    text2img.register_modules(image_encoder=encoder)
    try:
        text2img.load_ip_adapter(
            where,
            subfolder=subfolder,
            weight_name=weight_name,
            image_encoder_folder=None,
            local_files_only=local_only,
        )
    except Exception as exc:
        made_for, example = (
            ("SDXL", "sdxl_models/ip-adapter_sdxl.safetensors")
            if family == "sdxl"
            else ("SD1.5", "models/ip-adapter_sd15.safetensors")
        )
        raise DiffusionConfigError(
            f"IP-Adapter {config.ip_adapter!r} cannot be loaded into this {family} model "
            f"({type(exc).__name__}: {_brief(exc)}). Use IP-Adapter weights made for {made_for} models, in "
            f"diffusers load_ip_adapter format (image_proj and ip_adapter parts), e.g. {example} from "
            f"h94/IP-Adapter"
        ) from exc
    text2img.set_ip_adapter_scale(config.ip_adapter_scale)
    name = Path(weight_name).stem
    log.info("IP-Adapter %s loaded (scale %g, image encoder %s)", name, config.ip_adapter_scale, shown)
    return name


def _has_ip_adapter(pipe: Any) -> bool:
    from diffusers.models.embeddings import MultiIPAdapterImageProjection

    unet = getattr(pipe, "unet", None)
    return isinstance(getattr(unet, "encoder_hid_proj", None), MultiIPAdapterImageProjection)


def _ip_adapter_probe(pipe: Any, device: torch.device) -> tuple[bool, torch.Tensor]:
    """Run a blank picture through the image encoder and the adapter's projection once, so that an encoder
    that does not fit the weights fails at load with a clear message, not in the first selfie. Returns whether
    the adapter reads hidden states, and zero embeds of one batch item's shape (the neutral input)."""
    from diffusers.models.embeddings import ImageProjection
    from PIL import Image

    layers = list(pipe.unet.encoder_hid_proj.image_projection_layers)
    if len(layers) != 1:
        raise DiffusionConfigError(f"{len(layers)} IP-Adapters are loaded; Chibify uses one")
    if "FaceID" in type(layers[0]).__name__:
        raise DiffusionConfigError(
            "IP-Adapter FaceID weights need InsightFace face embeddings, which Chibify does not compute: use a "
            "plain or Plus IP-Adapter (e.g. ip-adapter_sd15.safetensors or ip-adapter-plus-face_sd15.safetensors)"
        )
    if getattr(pipe, "image_encoder", None) is None or getattr(pipe, "feature_extractor", None) is None:
        raise DiffusionConfigError(
            "the IP-Adapter has no image encoder: set ip_adapter_encoder to " + _ENCODER_HINT
        )
    hidden = not isinstance(layers[0], ImageProjection)
    try:
        with torch.inference_mode():
            embeds, _ = pipe.encode_image([Image.new("RGB", (224, 224), (127, 127, 127))], device, 1, hidden)
            item = embeds.unsqueeze(1)  # (batch 1, one image, ...)
            pipe.unet.encoder_hid_proj([item])
    except Exception as exc:
        raise DiffusionConfigError(
            f"the IP-Adapter weights do not fit its image encoder ({type(exc).__name__}: {_brief(exc)}): "
            f"set ip_adapter_encoder to the image encoder the adapter was trained with (e.g. models/image_encoder "
            f"of h94/IP-Adapter for ip-adapter_sd15)"
        ) from exc
    return hidden, torch.zeros(tuple(item.shape), dtype=item.dtype, device=device)


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

    ip_name = _load_ip_adapter(text2img, config, family) if config.ip_adapter.strip() else ""
    pipes = assemble(text2img, config, device=device, dtype=dtype, ip_adapter_name=ip_name)
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
    text2img: Any,
    config: DiffusionConfig,
    *,
    device: torch.device,
    dtype: torch.dtype,
    ip_adapter_name: str = "",
) -> Pipelines:
    """Move a loaded text-to-image pipeline to ``device``, optimise it (SDPA, channels_last, compile) and make
    the img2img and inpaint pipelines from it with ``from_pipe`` (shared weights, no copy). An IP-Adapter
    already loaded into ``text2img`` is kept, and its image encoder is shared with the other two."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    text2img.to(device)
    text2img.set_progress_bar_config(disable=True)
    _optimise(text2img, device, config)
    has_ip = _has_ip_adapter(text2img)
    ip_hidden, ip_neutral = _ip_adapter_probe(text2img, device) if has_ip else (False, None)
    img2img = AutoPipelineForImage2Image.from_pipe(text2img)
    inpaint = AutoPipelineForInpainting.from_pipe(text2img)
    for pipe in (img2img, inpaint):
        pipe.set_progress_bar_config(disable=True)
        if has_ip:
            for part in ("image_encoder", "feature_extractor"):
                if getattr(pipe, part, None) is not getattr(text2img, part):
                    pipe.register_modules(**{part: getattr(text2img, part)})
    return Pipelines(
        text2img=text2img,
        img2img=img2img,
        inpaint=inpaint,
        device=device,
        dtype=dtype,
        family="sdxl" if type(text2img).__name__ == "StableDiffusionXLPipeline" else "sd15",
        vae_scale_factor=int(getattr(text2img, "vae_scale_factor", 8)),
        ip_adapter=(ip_adapter_name or "ip-adapter") if has_ip else "",
        ip_hidden_states=ip_hidden,
        ip_neutral=ip_neutral,
    )


def _optimise(pipe: Any, device: torch.device, config: DiffusionConfig) -> None:
    """SDPA attention everywhere; channels_last on CUDA; torch.compile of the UNet when asked."""
    from diffusers.models.attention_processor import (
        AttnProcessor2_0,
        IPAdapterAttnProcessor,
        IPAdapterAttnProcessor2_0,
        IPAdapterXFormersAttnProcessor,
    )

    try:
        current = pipe.unet.attn_processors
        keep = (IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0, IPAdapterXFormersAttnProcessor)
        if any(isinstance(p, keep) for p in current.values()):
            # An IP-Adapter's cross-attention processors hold its weights: keep them (diffusers picks the
            # SDPA one, IPAdapterAttnProcessor2_0, on torch 2); every other processor becomes SDPA.
            pipe.unet.set_attn_processor(
                {name: p if isinstance(p, keep) else AttnProcessor2_0() for name, p in current.items()}
            )
        else:
            pipe.unet.set_attn_processor(AttnProcessor2_0())
    except Exception as exc:  # e.g. a model with custom processors: keep its own
        log.warning("could not switch the UNet to SDPA attention: %s", exc)
    if device.type == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if config.compile:
        pipe.unet.compile(mode=config.compile_mode, fullgraph=False, dynamic=False)
