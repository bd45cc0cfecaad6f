"""DiffusionConfig: everything that decides how the diffusion engine loads and runs, as plain values.

The caller (``bot/`` reads settings; tests write it directly) builds a :class:`DiffusionConfig` and hands it to
the worker as :class:`~generation.jobs.EngineSpec` options (:meth:`DiffusionConfig.engine_spec`). Options may
also arrive as strings (from an environment variable or a command line): :meth:`DiffusionConfig.from_options`
parses them. No torch here: the bot process imports this module freely.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.jobs import EngineSpec

__all__ = [
    "DTYPES",
    "ENGINE_TARGET",
    "FAMILIES",
    "IP_ADAPTER_SUFFIXES",
    "SCHEDULERS",
    "STYLES",
    "TEXT_MODES",
    "DiffusionConfig",
    "DiffusionConfigError",
    "LoraSpec",
    "model_defaults",
]

ENGINE_TARGET = "generation.diffusion.engine:DiffusionEngine"
DTYPES = ("auto", "float32", "float16", "bfloat16")
FAMILIES = ("auto", "sd15", "sdxl")
TEXT_MODES = ("img2img", "text2img")
SELFIE_INITS = ("photo", "render")
SCHEDULERS = (
    "default",
    "euler",
    "euler_a",
    "dpmpp_2m",
    "dpmpp_2m_karras",
    "ddim",
    "unipc",
    "lcm",
)
STYLES = ("chibi", "flat", "painted", "none")
IP_ADAPTER_SUFFIXES = (".safetensors", ".bin")
_WEIGHT_LIKE_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".pkl", ".gguf", ".onnx")


class DiffusionConfigError(ValueError):
    """The diffusion configuration cannot work; the message says what to set instead."""


@dataclass(frozen=True, slots=True)
class LoraSpec:
    """One LoRA: a ``.safetensors`` file or a folder holding one, and how strongly it applies."""

    path: str
    weight: float = 1.0
    name: str = ""

    @property
    def adapter_name(self) -> str:
        if self.name:
            return self.name
        stem = Path(self.path).stem if self.path.endswith(".safetensors") else Path(self.path).name
        return "".join(c if c.isalnum() else "_" for c in stem) or "lora"

    @classmethod
    def parse(cls, value: str | Mapping[str, Any] | LoraSpec) -> LoraSpec:
        """``"path"``, ``"path@0.7"`` or ``{"path": ..., "weight": ..., "name": ...}``."""
        if isinstance(value, LoraSpec):
            return value
        if isinstance(value, Mapping):
            return cls(
                path=str(value["path"]),
                weight=float(value.get("weight", 1.0)),
                name=str(value.get("name", "")),
            )
        text = value.strip()
        path, sep, weight = text.rpartition("@")
        if not sep:
            return cls(path=text)
        try:
            return cls(path=path.strip(), weight=float(weight))
        except ValueError:
            raise DiffusionConfigError(
                f"LoRA {text!r}: the weight after '@' must be a number, e.g. path@0.8"
            ) from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise DiffusionConfigError(f"{value!r} is not a yes/no value")


def model_defaults(model: str) -> dict[str, Any]:
    """The ``engine`` settings in a local model folder's ``chibify.json`` (written by ``chibify train
    diffusion``), or nothing."""
    if not model:
        return {}
    path = Path(model).expanduser() / "chibify.json"
    if not path.is_file():
        return {}
    try:
        engine = json.loads(path.read_text(encoding="utf-8")).get("engine", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise DiffusionConfigError(f"{path} cannot be read: {exc}") from None
    return dict(engine) if isinstance(engine, dict) else {}


@dataclass(frozen=True, slots=True)
class DiffusionConfig:
    """How the diffusion engine loads and runs. Every field has a safe default except ``model``.

    ``model`` is a local diffusers folder (``model_index.json`` inside) or, with ``allow_download``, a model
    hub id. Nothing is ever downloaded unless ``allow_download`` is true: every loader call gets
    ``local_files_only=True`` (a hub id already in the local Hugging Face cache still loads offline).
    """

    model: str = ""
    family: str = "auto"  # sd15 | sdxl | auto (read from model_index.json)
    loras: tuple[LoraSpec, ...] = ()
    fuse_loras: bool = True
    scheduler: str = "default"
    steps: int = 25
    guidance: float = 7.0
    dtype: str = "auto"  # auto: bfloat16 on CUDA when supported (else float16), float32 on CPU
    device: str = "auto"  # auto: cuda when available, else cpu
    tiny_vae: str = ""  # folder (or hub id with allow_download) of an AutoencoderTiny, e.g. TAESD
    compile: bool = False
    compile_mode: str = "default"
    allow_download: bool = False
    text_mode: str = "img2img"  # img2img from the chibi render, or plain text2img
    img2img_strength: float = 0.65
    selfie_strength: float = 0.6
    selfie_init: str = "photo"  # a selfie starts from the head crop ("photo") or the derived spec's render
    inpaint_strength: float = 0.9
    inpaint_paste_back: bool = True
    mask_grow: int = 0  # pixels to grow the edit mask by; 0 = size / 64
    resolution: int = 0  # generate at this size (then resize to the request's); 0 = the request's size
    max_batch: int = 8
    warmup: bool = True
    style: str = "chibi"
    extra_prompt: str = ""
    extra_negative: str = ""
    model_name: str = ""  # what results record as the model; default: the folder name or hub id
    ip_adapter: str = ""  # IP-Adapter weights (.safetensors/.bin file or a folder holding one) for selfies
    ip_adapter_encoder: str = ""  # its CLIP image encoder folder; default: image_encoder/ next to the weights
    ip_adapter_scale: float = 0.6  # how strongly the selfie photo steers the picture (0..2)
    batch_buckets: tuple[int, ...] = field(default=(1, 2, 4, 8))

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise DiffusionConfigError(f"family must be one of {', '.join(FAMILIES)}, not {self.family!r}")
        if self.scheduler not in SCHEDULERS:
            raise DiffusionConfigError(
                f"scheduler must be one of {', '.join(SCHEDULERS)}, not {self.scheduler!r}"
            )
        if self.dtype not in DTYPES:
            raise DiffusionConfigError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.text_mode not in TEXT_MODES:
            raise DiffusionConfigError(
                f"text_mode must be one of {', '.join(TEXT_MODES)}, not {self.text_mode!r}"
            )
        if self.selfie_init not in SELFIE_INITS:
            raise DiffusionConfigError(
                f"selfie_init must be one of {', '.join(SELFIE_INITS)}, not {self.selfie_init!r}"
            )
        if self.style not in STYLES:
            raise DiffusionConfigError(f"style must be one of {', '.join(STYLES)}, not {self.style!r}")
        if not 1 <= self.steps <= 200:
            raise DiffusionConfigError(f"steps must be between 1 and 200, not {self.steps}")
        if not 0.0 <= self.guidance <= 30.0:
            raise DiffusionConfigError(f"guidance must be between 0 and 30, not {self.guidance}")
        for name in ("img2img_strength", "selfie_strength", "inpaint_strength"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise DiffusionConfigError(f"{name} must be above 0 and at most 1, not {value}")
        if self.max_batch < 1:
            raise DiffusionConfigError("max_batch must be at least 1")
        if self.resolution and (self.resolution < 64 or self.resolution % 8):
            raise DiffusionConfigError(
                f"resolution must be a multiple of 8, at least 64 (or 0), not {self.resolution}"
            )
        if self.mask_grow < 0:
            raise DiffusionConfigError("mask_grow must not be negative")
        if not 0.0 <= self.ip_adapter_scale <= 2.0:
            raise DiffusionConfigError(
                f"ip_adapter_scale must be between 0 and 2, not {self.ip_adapter_scale} (0.5-0.8 is usual)"
            )
        if self.ip_adapter_encoder.strip() and not self.ip_adapter.strip():
            raise DiffusionConfigError(
                "ip_adapter_encoder is set but ip_adapter is not: set ip_adapter to the IP-Adapter weights "
                "(e.g. /models/ip-adapter/ip-adapter_sd15.safetensors), or clear ip_adapter_encoder"
            )
        if self.ip_adapter.strip():
            suffix = Path(self.ip_adapter.strip()).suffix.lower()
            if suffix in _WEIGHT_LIKE_SUFFIXES and suffix not in IP_ADAPTER_SUFFIXES:
                raise DiffusionConfigError(
                    f"ip_adapter {self.ip_adapter!r}: IP-Adapter weights are read from .safetensors or .bin "
                    f"files (diffusers load_ip_adapter format), not {suffix}"
                )
        if (
            not self.batch_buckets
            or sorted(set(self.batch_buckets)) != list(self.batch_buckets)
            or self.batch_buckets[0] < 1
        ):
            raise DiffusionConfigError("batch_buckets must be increasing positive sizes, e.g. 1,2,4,8")
        if not (
            self.device == "auto"
            or self.device == "cpu"
            or self.device == "mps"
            or self.device.startswith("cuda")
        ):
            raise DiffusionConfigError(f"device must be auto, cpu, mps, cuda or cuda:N, not {self.device!r}")

    # --- building -----------------------------------------------------------------------------------

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DiffusionConfig:
        """Build from keyword options whose values may be strings (``"25"``, ``"true"``, ``"a@0.8;b"``).

        Unknown keys are an error (a typo would otherwise be silently ignored). A model folder trained by
        Chibify carries the settings it was trained for (``chibify.json``); they apply unless overridden."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        defaults = model_defaults(str(options.get("model") or ""))
        for key, raw in {**{k: v for k, v in defaults.items() if k in known}, **options}.items():
            if key not in known:
                raise DiffusionConfigError(
                    f"unknown diffusion option {key!r} (known: {', '.join(sorted(known))})"
                )
            default = known[key].default
            if key == "loras":
                items = raw.split(";") if isinstance(raw, str) else list(raw)
                values[key] = tuple(
                    LoraSpec.parse(x) for x in items if not (isinstance(x, str) and not x.strip())
                )
            elif key == "batch_buckets":
                items = raw.split(",") if isinstance(raw, str) else list(raw)
                values[key] = tuple(int(x) for x in items if str(x).strip())
            elif isinstance(default, bool):
                values[key] = _to_bool(raw)
            elif isinstance(default, int):
                try:
                    values[key] = int(raw)
                except (TypeError, ValueError):
                    raise DiffusionConfigError(f"{key} must be a whole number, not {raw!r}") from None
            elif isinstance(default, float):
                try:
                    values[key] = float(raw)
                except (TypeError, ValueError):
                    raise DiffusionConfigError(f"{key} must be a number, not {raw!r}") from None
            else:
                values[key] = "" if raw is None else str(raw)
        return cls(**values)

    def to_options(self) -> tuple[tuple[str, Any], ...]:
        """Plain, picklable keyword options: the fields that differ from the defaults, and every field the
        model folder's ``chibify.json`` sets (``from_options`` applies those again, so a value that was
        overridden back to the class default must still be said)."""
        out: list[tuple[str, Any]] = []
        folder_sets = set(model_defaults(self.model))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value == f.default and f.name not in folder_sets:
                continue
            if f.name == "loras":
                value = tuple({"path": x.path, "weight": x.weight, "name": x.name} for x in value)
            out.append((f.name, value))
        return tuple(out)

    def engine_spec(self, name: str = "diffusion") -> EngineSpec:
        """The :class:`EngineSpec` that makes the worker build this engine with this configuration."""
        return EngineSpec(name=name, target=ENGINE_TARGET, options=self.to_options())

    # --- derived ------------------------------------------------------------------------------------

    @property
    def model_is_local(self) -> bool:
        return bool(self.model) and Path(self.model).expanduser().is_dir()

    @property
    def display_model(self) -> str:
        """What results and PNG metadata record as the model."""
        if self.model_name:
            return self.model_name
        if self.model_is_local:
            return Path(self.model).expanduser().resolve().name
        return self.model
