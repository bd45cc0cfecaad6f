"""DiffusionEngine: the worker's engine for Stable Diffusion checkpoints (SD1.5-class and SDXL-class).

One request becomes one of three modes:

* ``text2img`` -- the spec's prompt alone (``text_mode="text2img"``, or request metadata ``mode=text2img``);
* ``img2img``  -- from the chibi engine's render of the spec (the default), or from ``init_image`` (a selfie;
  with an IP-Adapter configured, the same photo also steers the picture through the adapter);
* ``inpaint``  -- an edit (``kind="edit"`` with ``parent_spec``): only the chibi engine's
  ``region_for_change(old, new)`` is repainted, from the parent picture, with the same seed.

Compatible requests (same mode, size, steps, strength and IP-Adapter use) run in one pipeline call with one
``torch.Generator`` per request, so each picture depends on its own seed only, never on its batch-mates.
A CUDA out-of-memory error halves the batch size and retries once; other failures fail only their jobs.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from PIL.PngImagePlugin import PngInfo

from generation.diffusion.config import DiffusionConfig
from generation.diffusion.loader import Pipelines, assemble, load_pipelines, resolve_device
from generation.diffusion.prompting import build_prompt
from generation.jobs import GenerationRequest, GenerationResult
from generation.spec import AvatarSpec

__all__ = ["Cancelled", "DiffusionEngine", "OutOfMemory", "Prepared"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, int], None]
GroupKey = tuple[str, int, int, float, bool]
MAX_INIT_PIXELS = 40_000_000
MODES = ("text2img", "img2img", "inpaint")


class Cancelled(RuntimeError):
    """The batch was cancelled between two denoising steps."""


class OutOfMemory(RuntimeError):
    """GPU memory ran out even after halving the batch."""


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


@dataclass
class Prepared:
    """One request, ready for a pipeline call."""

    index: int
    request: GenerationRequest
    mode: str
    prompt: str
    negative: str
    seed: int
    resolution: int
    steps: int
    strength: float
    init: np.ndarray | None = None  # H x W x 3 uint8 at ``resolution``
    mask: np.ndarray | None = None  # H x W bool (inpaint: what may change)
    base: np.ndarray | None = None  # inpaint: the picture whose unmasked pixels are kept
    ip_image: np.ndarray | None = None  # selfie with an IP-Adapter loaded: the photo the adapter reads
    spec: dict[str, Any] | None = None  # a selfie's spec, derived from the photo (else the request's)

    def group_key(self) -> GroupKey:
        # A call runs the IP-Adapter at one scale for all its pictures: selfies (the configured scale) and
        # the rest (scale 0) never share one.
        return (self.mode, self.resolution, self.steps, self.strength, self.ip_image is not None)


class DiffusionEngine:
    """``run_batch(requests, progress)`` for the worker; built once per worker with a :class:`DiffusionConfig`
    (or the same fields as keyword options, which is how :class:`~generation.jobs.EngineSpec` passes them)."""

    name = "diffusion"
    draws_selfie_spec = True  # the worker turns a selfie into request.spec first (engines.prepare_selfie)

    def __init__(self, config: DiffusionConfig | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError("give either a DiffusionConfig or keyword options, not both")
        self.config = config if config is not None else DiffusionConfig.from_options(options)
        self.pipes: Pipelines = load_pipelines(self.config)
        self._setup()

    @classmethod
    def from_pipeline(cls, text2img: Any, config: DiffusionConfig) -> DiffusionEngine:
        """An engine around a pipeline already in memory (the benchmark builds full-size models from configs
        with random weights): moved to ``config.device``, optimised, shared with img2img and inpaint."""
        engine = cls.__new__(cls)
        engine.config = config
        device = resolve_device(config.device)
        engine.pipes = assemble(text2img, config, device=device, dtype=text2img.unet.dtype)
        engine._setup()
        return engine

    def _setup(self) -> None:
        self.max_batch = self.config.max_batch
        self._cancel = threading.Event()
        self._chibi: Any = None
        self._ip_scale: float | None = None  # the scale the IP-Adapter's processors hold now
        self.model = self.config.display_model
        if self.config.warmup:
            self.warmup()

    # --- control ------------------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the running batch at the next denoising step (thread-safe). Its jobs fail as cancelled."""
        self._cancel.set()

    def warmup(self) -> None:
        """One short text-to-image call per batch bucket (compiled) or at batch 1, so the first real job
        does not pay for kernel selection, allocator growth or compilation."""
        started = time.perf_counter()
        res = self.config.resolution or (64 if self.pipes.device.type == "cpu" else self._native())
        sizes = [b for b in self.config.batch_buckets if b <= self.max_batch] if self.config.compile else [1]
        pipe = self.pipes.text2img
        for batch in sizes or [1]:
            # With an IP-Adapter: once without it (text jobs) and once with a blank photo (selfies).
            for ip_images in [None, [_BLANK] * batch] if self.pipes.ip_adapter else [None]:
                call: dict[str, Any] = {
                    "prompt": ["chibi"] * batch,
                    "negative_prompt": [""] * batch if self.config.guidance > 1 else None,
                    "num_inference_steps": 2,
                    "guidance_scale": self.config.guidance,
                    "height": res,
                    "width": res,
                    "generator": [torch.Generator("cpu").manual_seed(0) for _ in range(batch)],
                    "output_type": "np",
                }
                if self.pipes.ip_adapter:
                    call["ip_adapter_image_embeds"] = self._ip_embeds(pipe, ip_images, batch)
                    self._set_ip_scale(self.config.ip_adapter_scale if ip_images else 0.0)
                self._invoke(pipe, call)
        log.info("diffusion warm-up done in %.1f s", time.perf_counter() - started)

    def _native(self) -> int:
        return 1024 if self.pipes.family == "sdxl" else 512

    # --- the worker interface -----------------------------------------------------------------------------

    def run_batch(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn
    ) -> list[GenerationResult | BaseException]:
        self._cancel.clear()
        results: list[GenerationResult | BaseException | None] = [None] * len(requests)
        groups: dict[GroupKey, list[Prepared]] = {}
        for index, request in enumerate(requests):
            started = time.perf_counter()
            try:
                job = self.prepare(index, request)
            except Exception as exc:
                results[index] = exc
                continue
            if job.mode == "inpaint" and job.mask is not None and not job.mask.any():
                # The change is not visible in the picture: the parent picture is the answer.
                assert job.base is not None
                results[index] = self._result(job, job.base, time.perf_counter() - started)
                progress(index, 1, 1)
                continue
            groups.setdefault(job.group_key(), []).append(job)
        for group in groups.values():
            for start in range(0, len(group), self.max_batch):
                self._run_chunk(group[start : start + self.max_batch], progress, results)
        return [r if r is not None else RuntimeError("no result") for r in results]

    # --- preparing requests ---------------------------------------------------------------------------------

    def prepare(self, index: int, request: GenerationRequest) -> Prepared:
        """Check one request and turn it into pipeline inputs (prompt, init image, mask)."""
        cfg = self.config
        if request.model and request.model not in (cfg.model, self.model):
            raise ValueError(f"model {request.model!r} is not loaded here (this worker runs {self.model!r})")
        spec = AvatarSpec.from_json(request.spec)
        res = cfg.resolution or max(64, round(request.size / 64) * 64)
        selfie = bool(request.init_image) and request.kind != "edit"
        head: np.ndarray | None = None
        if selfie:
            # The photo decides the spec (analysed in memory, never stored), as with the chibi engine, with
            # the user's words merged over it; the words are also appended to the prompt, as for /avatar.
            spec, head = self._selfie(request, spec.seed, res)
        pair = build_prompt(
            spec,
            request.prompt,
            style=cfg.style,
            extra_prompt=cfg.extra_prompt,
            extra_negative=cfg.extra_negative,
        )
        steps = request.steps or cfg.steps
        mode = self._mode_of(request)
        job = Prepared(
            index=index,
            request=request,
            mode=mode,
            prompt=pair.prompt,
            negative=pair.negative,
            seed=int(spec.seed),
            resolution=res,
            steps=steps,
            strength=1.0,
            spec=spec.to_json() if selfie else None,
        )
        if mode == "inpaint":
            assert request.parent_spec is not None
            old = AvatarSpec.from_json(request.parent_spec)
            chibi = self._chibi_engine()
            mask = np.asarray(chibi.region_for_change(old, spec, res), dtype=bool)
            mask = _dilate(mask, cfg.mask_grow or max(1, res // 64))
            base = _decode(request.init_image, res) if request.init_image else self._render(old, res)
            guide = self._render(spec, res)
            job.base = base
            job.mask = mask
            job.init = np.where(
                mask[..., None], guide, base
            )  # the new part, drawn by the chibi engine, as a start
            job.strength = cfg.inpaint_strength
        elif mode == "img2img":
            if head is not None:
                # selfie_init="photo": from the head crop; "render": from the derived spec's chibi render
                # (for a model that only knows chibi art). The adapter always reads the photo.
                job.init = head if cfg.selfie_init == "photo" else self._render(spec, res)
                job.strength = cfg.selfie_strength
                if self.pipes.ip_adapter:
                    job.ip_image = head  # the encoder resizes it to its input
            elif request.init_image:
                job.init = _decode(request.init_image, res)
                job.strength = cfg.selfie_strength
            else:
                job.init = self._render(spec, res)
                job.strength = cfg.img2img_strength
        if mode != "text2img" and int(steps * job.strength) < 1:
            job.steps = math.ceil(1 / job.strength)  # e.g. SD-Turbo at 1 step and strength 0.5 -> 2 steps
        return job

    def _selfie(self, request: GenerationRequest, seed: int, res: int) -> tuple[AvatarSpec, np.ndarray]:
        """The photo's spec (the user's prompt merged over it) and its head crop at ``res``."""
        from generation.engines import ChibiAdapter, selfie_prepared
        from generation.face.analyze import head_crop, head_crop_box
        from generation.face.decode import decode_photo

        if selfie_prepared(request) and request.init_image is not None:  # the worker read the photo already
            box = tuple(int(v) for v in str(request.meta("face_bbox")).split(","))
            assert len(box) == 4
            photo = decode_photo(request.init_image)
            return AvatarSpec.from_json(request.spec), head_crop_box(
                photo, (box[0], box[1], box[2], box[3]), res
            )
        spec, photo, analysis = ChibiAdapter.selfie(request, seed)
        return spec, head_crop(photo, analysis, res)

    def _mode_of(self, request: GenerationRequest) -> str:
        if request.kind == "edit" and request.parent_spec is not None:
            return "inpaint"
        if request.init_image:
            return "img2img"
        asked = request.meta("mode")
        if asked in ("text2img", "img2img"):
            return asked
        return self.config.text_mode

    def _chibi_engine(self) -> Any:
        if self._chibi is None:
            from generation.chibi import ChibiEngine

            self._chibi = ChibiEngine()
        return self._chibi

    def _render(self, spec: AvatarSpec, res: int) -> np.ndarray:
        rgba = np.asarray(self._chibi_engine().render_rgba(spec, res))
        return _flatten(rgba)

    # --- running ------------------------------------------------------------------------------------------

    def _run_chunk(
        self,
        chunk: list[Prepared],
        progress: ProgressFn,
        results: list[GenerationResult | BaseException | None],
    ) -> None:
        if self._cancel.is_set():
            for job in chunk:
                results[job.index] = Cancelled("cancelled")
            return
        try:
            self._run_and_store(chunk, progress, results)
            return
        except Cancelled as exc:
            for job in chunk:
                results[job.index] = exc
            return
        except Exception as exc:
            if not _is_oom(exc):
                log.warning("diffusion batch of %d failed: %s", len(chunk), exc)
                for job in chunk:
                    results[job.index] = exc
                return
            first = exc
        self._free_memory()
        if len(chunk) == 1:
            for job in chunk:
                results[job.index] = OutOfMemory(
                    f"the GPU ran out of memory for one {chunk[0].resolution} px picture; try a smaller size "
                    f"or a lighter model ({_short(first)})"
                )
            return
        half = max(1, len(chunk) // 2)
        log.warning("GPU out of memory at batch %d; batch size is now %d, retrying once", len(chunk), half)
        self.max_batch = min(self.max_batch, half)
        for start in range(0, len(chunk), half):
            sub = chunk[start : start + half]
            try:
                self._run_and_store(sub, progress, results)
            except Exception as exc:
                if _is_oom(exc):
                    self._free_memory()
                    err: BaseException = OutOfMemory(
                        f"the GPU ran out of memory even at batch size {len(sub)} "
                        f"({sub[0].resolution} px); try again later or use a smaller size"
                    )
                else:
                    err = exc
                for job in sub:
                    results[job.index] = err

    def _free_memory(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _run_and_store(
        self,
        chunk: list[Prepared],
        progress: ProgressFn,
        results: list[GenerationResult | BaseException | None],
    ) -> None:
        started = time.perf_counter()
        images = self._generate(chunk, progress)
        run_s = time.perf_counter() - started
        for job, image in zip(chunk, images, strict=True):
            try:
                results[job.index] = self._result(job, self._finish(job, image), run_s)
            except Exception as exc:
                results[job.index] = exc

    def _padded(self, chunk: list[Prepared]) -> list[Prepared]:
        """Compiled: pad to the next fixed batch bucket (the padding's pictures are thrown away), so the
        compiled UNet sees a handful of shapes and never recompiles."""
        if not self.config.compile:
            return chunk
        bucket = next((b for b in self.config.batch_buckets if b >= len(chunk)), len(chunk))
        return chunk + [chunk[-1]] * (bucket - len(chunk))

    def _generate(self, chunk: list[Prepared], progress: ProgressFn) -> list[np.ndarray]:
        """One pipeline call for the chunk; returns H x W x 3 uint8 pictures in chunk order."""
        first = chunk[0]
        padded = self._padded(chunk)
        cfg = self.config
        pipe = self.pipes.for_mode(first.mode)
        cancel = self._cancel

        def on_step_end(p: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if cancel.is_set():
                raise Cancelled("cancelled")
            total = int(getattr(p, "num_timesteps", 0) or first.steps)
            for job in chunk:
                progress(job.index, step + 1, total)
            return kwargs

        call: dict[str, Any] = {
            "prompt": [j.prompt for j in padded],
            "negative_prompt": [j.negative for j in padded] if cfg.guidance > 1 else None,
            "num_inference_steps": first.steps,
            "guidance_scale": cfg.guidance,
            "generator": [torch.Generator("cpu").manual_seed(j.seed) for j in padded],
            "output_type": "np",
            "callback_on_step_end": on_step_end,
        }
        if first.mode == "text2img":
            call.update(height=first.resolution, width=first.resolution)
        else:
            call.update(
                image=[Image.fromarray(j.init) for j in padded if j.init is not None], strength=first.strength
            )
        if first.mode == "inpaint":
            call.update(
                mask_image=[
                    Image.fromarray(j.mask.astype(np.uint8) * 255) for j in padded if j.mask is not None
                ],
                height=first.resolution,
                width=first.resolution,
            )
        if self.pipes.ip_adapter:
            # Once loaded, the adapter needs image embeds in every call. A selfie gets its photo's; any other
            # job gets zeros at scale 0, which skips the adapter's attention altogether (no effect at all).
            photos = [j.ip_image for j in padded if j.ip_image is not None]
            call["ip_adapter_image_embeds"] = self._ip_embeds(pipe, photos or None, len(padded))
            self._set_ip_scale(cfg.ip_adapter_scale if photos else 0.0)
        output = self._invoke(pipe, call)
        images = np.asarray(output.images)
        if images.dtype != np.uint8:
            images = (
                (np.nan_to_num(images.astype(np.float32)).clip(0.0, 1.0) * 255.0).round().astype(np.uint8)
            )
        return [images[i] for i in range(len(chunk))]

    def _invoke(self, pipe: Any, call: dict[str, Any]) -> Any:
        """The one place a pipeline is called (tests replace it to simulate an out-of-memory error)."""
        with torch.inference_mode(), _per_item_ip_embeds(pipe, call.get("ip_adapter_image_embeds")):
            return pipe(**call)

    # --- IP-Adapter ---------------------------------------------------------------------------------------

    def _cfg_on(self, pipe: Any) -> bool:
        """Whether the pipeline will run classifier-free guidance (its own rule: no CFG for a guidance-embedded
        UNet such as LCM's)."""
        return self.config.guidance > 1 and getattr(pipe.unet.config, "time_cond_proj_dim", None) is None

    def _ip_embeds(self, pipe: Any, photos: Sequence[np.ndarray] | None, batch: int) -> list[torch.Tensor]:
        """``ip_adapter_image_embeds`` for one call, one entry per batch item: ``[negatives; positives]``
        (batch x 1 image x ...) under CFG, else the positives. ``photos=None``: the neutral zeros."""
        neutral = self.pipes.ip_neutral
        assert neutral is not None
        if photos is None:
            positive = negative = neutral.expand(batch, *neutral.shape[1:])
        else:
            images = [Image.fromarray(p) for p in photos]
            with torch.inference_mode():
                embeds, uncond = pipe.encode_image(images, self.pipes.device, 1, self.pipes.ip_hidden_states)
            positive, negative = embeds.unsqueeze(1), uncond.unsqueeze(1)
        return [torch.cat([negative, positive]) if self._cfg_on(pipe) else positive]

    def _set_ip_scale(self, scale: float) -> None:
        """The adapter's scale lives in the shared UNet's attention processors; set it for the next call."""
        if self._ip_scale != scale:
            self.pipes.text2img.set_ip_adapter_scale(scale)
            self._ip_scale = scale

    # --- results ----------------------------------------------------------------------------------------------

    def _finish(self, job: Prepared, image: np.ndarray) -> np.ndarray:
        """Inpaint: put the parent's pixels back outside the mask (feathered inside it), so the rest stays."""
        if (
            job.mode == "inpaint"
            and self.config.inpaint_paste_back
            and job.mask is not None
            and job.base is not None
        ):
            soft = _feather(job.mask, max(1, job.resolution // 128))
            blended = (
                job.base.astype(np.float32) * (1.0 - soft[..., None])
                + image.astype(np.float32) * soft[..., None]
            )
            return np.asarray(blended.round().clip(0, 255).astype(np.uint8))
        return image

    def parameters(self, job: Prepared) -> str:
        """The A1111-style ``parameters`` text chunk."""
        cfg = self.config
        fields = [
            f"Steps: {job.steps}",
            f"Sampler: {type(self.pipes.text2img.scheduler).__name__}",
            f"CFG scale: {cfg.guidance:g}",
            f"Seed: {job.seed}",
            f"Size: {job.request.size}x{job.request.size}",
            f"Model: {self.model}",
            f"Mode: {job.mode}",
        ]
        if job.mode != "text2img":
            fields.append(f"Denoising strength: {job.strength:g}")
        if cfg.loras:
            fields.append("LoRA: " + ", ".join(f"{x.adapter_name}:{x.weight:g}" for x in cfg.loras))
        if job.ip_image is not None:
            fields.append(f"IP-Adapter: {self.pipes.ip_adapter}:{cfg.ip_adapter_scale:g}")
        fields.append("Engine: diffusion")
        # the resolved spec last, as the chibi engine writes it: the picture says what it shows
        spec = AvatarSpec.from_json(job.spec if job.spec is not None else job.request.spec).resolved()
        fields.append(f"Spec: {spec.to_text()}")
        return f"{job.prompt}\nNegative prompt: {job.negative}\n" + ", ".join(fields)

    def _result(self, job: Prepared, image: np.ndarray, run_s: float) -> GenerationResult:
        size = job.request.size
        picture = Image.fromarray(image, "RGB")
        if picture.size != (size, size):
            picture = picture.resize((size, size), Image.Resampling.LANCZOS)
        info = PngInfo()
        info.add_text("parameters", self.parameters(job))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", pnginfo=info, compress_level=4)
        return GenerationResult(
            png=buffer.getvalue(),
            width=size,
            height=size,
            engine="diffusion",
            model=self.model,
            spec=job.spec if job.spec is not None else job.request.spec,
            run_s=run_s,
        )


# --- IP-Adapter: one photo per batch item -----------------------------------------------------------------

_BLANK = np.full((224, 224, 3), 127, dtype=np.uint8)


@contextmanager
def _per_item_ip_embeds(pipe: Any, embeds: list[torch.Tensor] | None) -> Iterator[None]:
    """Hand ``embeds`` (one entry per batch item, ``[negatives; positives]`` under CFG) to the UNet as they are.

    diffusers (0.42) treats ``ip_adapter_image_embeds`` as the image(s) for *every* prompt: it tiles them
    ``batch`` times (``prepare_ip_adapter_image_embeds(..., batch_size * num_images_per_prompt, ...)``), so a
    batch of selfies would each see every photo. For the duration of one call, the pipeline's own preparation
    is replaced by one that returns the per-item embeds unchanged (after checking that the pipeline agrees on
    classifier-free guidance, which decides their layout)."""
    if embeds is None:
        yield
        return

    def prepare(
        ip_adapter_image: Any,
        ip_adapter_image_embeds: Any,
        device: torch.device,
        num_images_per_prompt: int,
        do_classifier_free_guidance: bool,
    ) -> list[torch.Tensor]:
        rows = num_images_per_prompt * (2 if do_classifier_free_guidance else 1)
        if any(e.shape[0] != rows for e in ip_adapter_image_embeds):
            raise RuntimeError(
                f"IP-Adapter embeds for {embeds[0].shape[0]} rows, the pipeline runs {rows} "
                f"(classifier-free guidance {'on' if do_classifier_free_guidance else 'off'})"
            )
        return [e.to(device) for e in ip_adapter_image_embeds]

    pipe.prepare_ip_adapter_image_embeds = prepare  # an instance attribute: shadows the class's method
    try:
        yield
    finally:
        del pipe.prepare_ip_adapter_image_embeds


# --- pixels -------------------------------------------------------------------------------------------------


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def _flatten(rgba: np.ndarray) -> np.ndarray:
    """RGBA (straight alpha) -> RGB over white."""
    if rgba.shape[-1] == 3:
        return rgba.astype(np.uint8)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.asarray(rgb.round().astype(np.uint8))


def _decode(data: bytes, res: int) -> np.ndarray:
    """An uploaded or stored picture -> res x res RGB, centre-cropped, EXIF orientation applied."""
    with Image.open(io.BytesIO(data)) as probe:
        width, height = probe.size
        if width * height > MAX_INIT_PIXELS:
            raise ValueError(f"the picture is too large ({width}x{height} pixels)")
        picture = ImageOps.exif_transpose(probe)
        picture = picture.convert("RGB")
    picture = ImageOps.fit(picture, (res, res), Image.Resampling.LANCZOS)
    return np.asarray(picture, dtype=np.uint8)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a boolean mask by ``radius`` pixels (square neighbourhood, separable)."""
    if radius <= 0 or not mask.any():
        return mask
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for shift in range(1, radius + 1):
            grown |= np.roll(out, shift, axis=axis) & _valid(out.shape, shift, axis)
            grown |= np.roll(out, -shift, axis=axis) & _valid(out.shape, -shift, axis)
        out = grown
    return out


def _valid(shape: tuple[int, ...], shift: int, axis: int) -> np.ndarray:
    """Where ``np.roll`` by ``shift`` did not wrap around."""
    valid = np.ones(shape, dtype=bool)
    index: list[slice] = [slice(None), slice(None)]
    index[axis] = slice(0, shift) if shift > 0 else slice(shift, None)
    valid[tuple(index)] = False
    return valid


def _feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """A soft version of the mask, 0 outside it, rising to 1 within ``radius`` pixels of its edge."""
    soft = mask.astype(np.float32)
    kernel = np.ones(2 * radius + 1, dtype=np.float32) / (2 * radius + 1)
    for axis in (0, 1):
        soft = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, soft)
    # At the mask's edge the blur is about 0.5; well inside it is 1. Map that to 0..1, and 0 outside.
    soft = np.where(mask, np.clip((soft - 0.5) * 2.0, 0.0, 1.0), 0.0)
    return np.asarray(soft, dtype=np.float32)
