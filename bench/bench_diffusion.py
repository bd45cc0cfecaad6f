"""Diffusion throughput: the naive one-request-at-a-time diffusers pipeline against the Chibify engine path.

Full-size SD1.5 and SDXL UNets, VAEs and CLIP text encoders are built from their public configs (written
out below) with random weights, so nothing is downloaded; the cost of a denoising step does not depend on
the weights' values. For each model and batch size N (1, 4, 8) the same N requests are run

* ``naive``: ``pipe(prompt, ...)`` once per request, batch 1, default settings (same dtype, SDPA is
  diffusers' default attention);
* ``engine``: ``DiffusionEngine.run_batch`` with all N in one pipeline call (one ``torch.Generator`` per
  request), channels_last UNet and VAE, SDPA, PNG encoding with the ``parameters`` chunk included;
* ``engine+compile`` (``--compile``): the same with ``torch.compile`` of the UNet and fixed batch buckets.

Every path gets one untimed warm-up run first (compilation happens there). Text-to-image mode everywhere
(img2img from the chibi render runs ``strength * steps`` steps and would flatter the engine).
Classifier-free guidance doubles the UNet batch (N requests -> 2N UNet rows per step).

    python -m bench.bench_diffusion                 # GPU: SD1.5 512 px 25 steps, SDXL 1024 px 30 steps
    python -m bench.bench_diffusion --compile       # add the compiled engine path
    python -m bench.bench_diffusion --smoke         # tiny configs on CPU, < 1 minute: checks the script

Results: ``bench/results/diffusion_<gpu>.json`` (``diffusion_smoke.json`` for ``--smoke``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

RESULTS = Path(__file__).parent / "results"

# --- public configs (stable-diffusion-v1-5 and stable-diffusion-xl-base-1.0, as published) ---------------

SD15_UNET: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
SD15_VAE: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
CLIP_L: dict[str, Any] = {  # openai/clip-vit-large-patch14 text tower
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}
SDXL_UNET: dict[str, Any] = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "use_linear_projection": True,
}
SDXL_VAE: dict[str, Any] = {**SD15_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
CLIP_BIGG: dict[str, Any] = {  # laion/CLIP-ViT-bigG-14 text tower (SDXL text_encoder_2)
    "vocab_size": 49408,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
}
SCHEDULER: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "timestep_spacing": "leading",
}

# --- tiny configs for --smoke (same code path, CPU) ----------------------------------------------------------

TINY_UNET: dict[str, Any] = {
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "sample_size": 32,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "cross_attention_dim": 32,
}
TINY_XL_UNET: dict[str, Any] = {
    **TINY_UNET,
    "attention_head_dim": [2, 4],
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 8,
    "transformer_layers_per_block": [1, 1],
    "projection_class_embeddings_input_dim": 80,
    "cross_attention_dim": 64,
}
TINY_VAE: dict[str, Any] = {
    "block_out_channels": [32, 64],
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "latent_channels": 4,
}
TINY_CLIP: dict[str, Any] = {
    "vocab_size": 1000,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "max_position_embeddings": 77,
    "projection_dim": 32,
}


@dataclass(frozen=True)
class Case:
    model: str  # sd15 | sdxl
    size: int
    steps: int
    guidance: float


def byte_tokenizer() -> CLIPTokenizer:
    """A byte-level CLIP tokenizer with no merges (the real vocabulary would need a download)."""
    bs = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    chars = [chr(c) for c in cs]
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(
        vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=77, pad_token="<|endoftext|>"
    )


def _text(cfg: dict[str, Any], tok: CLIPTokenizer, projection: bool) -> Any:
    config = CLIPTextConfig(
        **cfg, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def build_pipeline(model: str, smoke: bool, device: torch.device, dtype: torch.dtype) -> Any:
    """A full-size (or tiny) pipeline with random weights, created directly on ``device`` in ``dtype``."""
    tok = byte_tokenizer()
    with torch.device(device):
        if model == "sd15":
            unet = UNet2DConditionModel.from_config(TINY_UNET if smoke else SD15_UNET)
            vae = AutoencoderKL.from_config(TINY_VAE if smoke else SD15_VAE)
            text = _text(TINY_CLIP if smoke else CLIP_L, tok, projection=False)
            pipe: Any = StableDiffusionPipeline(
                unet=unet,
                vae=vae,
                text_encoder=text,
                tokenizer=tok,
                scheduler=EulerDiscreteScheduler.from_config(SCHEDULER),
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        else:
            unet = UNet2DConditionModel.from_config(TINY_XL_UNET if smoke else SDXL_UNET)
            vae = AutoencoderKL.from_config(TINY_VAE if smoke else SDXL_VAE)
            pipe = StableDiffusionXLPipeline(
                unet=unet,
                vae=vae,
                text_encoder=_text(TINY_CLIP if smoke else CLIP_L, tok, projection=False),
                text_encoder_2=_text(TINY_CLIP if smoke else CLIP_BIGG, tok, projection=True),
                tokenizer=tok,
                tokenizer_2=tok,
                scheduler=EulerDiscreteScheduler.from_config(SCHEDULER),
            )
    pipe.to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_naive(pipe: Any, case: Case, n: int, device: torch.device) -> float:
    started = time.perf_counter()
    for i in range(n):
        pipe(
            prompt=f"chibi, super deformed, request {i}",
            negative_prompt="worst quality" if case.guidance > 1 else None,
            num_inference_steps=case.steps,
            guidance_scale=case.guidance,
            height=case.size,
            width=case.size,
            generator=torch.Generator("cpu").manual_seed(i),
        )
    _sync(device)
    return time.perf_counter() - started


def run_engine(engine: Any, case: Case, n: int, device: torch.device) -> float:
    from generation.jobs import GenerationRequest
    from generation.spec import AvatarSpec

    requests = [
        GenerationRequest(
            user_key=f"bench:{i}",
            spec=AvatarSpec(seed=i).to_json(),
            engine="diffusion",
            size=case.size,
            steps=case.steps,
            metadata=(("mode", "text2img"),),
        )
        for i in range(n)
    ]
    engine.max_batch = n
    started = time.perf_counter()
    results = engine.run_batch(requests, lambda i, s, t: None)
    _sync(device)
    elapsed = time.perf_counter() - started
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError(f"engine failed: {failed[0]!r}")
    return elapsed


def bench_model(
    case: Case, batches: list[int], smoke: bool, device: torch.device, dtype: torch.dtype, compile_: bool
) -> list[dict[str, Any]]:
    from generation.diffusion import DiffusionConfig
    from generation.diffusion.engine import DiffusionEngine

    rows: list[dict[str, Any]] = []

    def record(path: str, n: int, seconds: float) -> None:
        row = {
            "model": case.model,
            "size": case.size,
            "steps": case.steps,
            "guidance": case.guidance,
            "path": path,
            "batch": n,
            "images": n,
            "seconds": round(seconds, 4),
            "images_per_s": round(n / seconds, 3),
            "ms_per_image": round(1000 * seconds / n, 1),
        }
        rows.append(row)
        print(
            f"{case.model:5} {case.size:5}px {case.steps:3} steps  {path:15} batch {n:2}: "
            f"{row['images_per_s']:8.3f} img/s  {row['ms_per_image']:9.1f} ms/img",
            flush=True,
        )

    build_s = time.perf_counter()
    pipe = build_pipeline(case.model, smoke, device, dtype)
    print(
        f"built {case.model} ({'tiny' if smoke else 'full size'}) in {time.perf_counter() - build_s:.1f} s",
        flush=True,
    )

    # Naive first, before the engine path changes the modules (channels_last, compile).
    run_naive(pipe, case, 1, device)  # warm-up
    for n in batches:
        record("naive", n, run_naive(pipe, case, n, device))

    variants = [("engine", False)] + ([("engine+compile", True)] if compile_ else [])
    for name, compiled in variants:
        cfg = DiffusionConfig(
            model=f"random-{case.model}",
            model_name=f"random-{case.model}",
            device=str(device),
            steps=case.steps,
            guidance=case.guidance,
            compile=compiled,
            warmup=False,
            max_batch=max(batches),
            batch_buckets=tuple(sorted(set(batches))),
            resolution=case.size,
        )
        engine = DiffusionEngine.from_pipeline(pipe, cfg)
        for n in batches:
            run_engine(engine, case, n, device)  # warm-up (and compilation) for this batch shape
            record(name, n, run_engine(engine, case, n, device))
    del pipe
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny configs on CPU: checks the script end to end")
    ap.add_argument("--compile", action="store_true", help="add the torch.compile engine path")
    ap.add_argument("--models", default="sd15,sdxl", help="comma-separated: sd15, sdxl")
    ap.add_argument("--batches", default="", help="batch sizes (default 1,4,8; smoke 1,2)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = ap.parse_args(argv)

    smoke = args.smoke
    if smoke:
        device, dtype = torch.device("cpu"), torch.float32
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    else:
        if not torch.cuda.is_available():
            print(
                "no CUDA GPU here: run with --smoke to check the script, or on a GPU machine", file=sys.stderr
            )
            return 2
        device = torch.device("cuda")
        dtype = torch.bfloat16
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    batches = [int(b) for b in args.batches.split(",") if b.strip()] or ([1, 2] if smoke else [1, 4, 8])
    cases = {
        "sd15": Case("sd15", 64 if smoke else 512, 2 if smoke else 25, 7.0),
        "sdxl": Case("sdxl", 64 if smoke else 1024, 2 if smoke else 30, 5.0),
    }
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "none"
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        rows += bench_model(cases[name], batches, smoke, device, dtype, args.compile and not smoke)

    speedups: dict[str, float] = {}
    for row in rows:
        if row["path"] == "naive":
            continue
        base = next(
            r
            for r in rows
            if r["path"] == "naive" and r["model"] == row["model"] and r["batch"] == row["batch"]
        )
        speedups[f"{row['model']} {row['path']} batch {row['batch']}"] = round(
            row["images_per_s"] / base["images_per_s"], 2
        )
    import diffusers

    report = {
        "label": "SMOKE RUN: tiny random configs on CPU; checks the script, NOT a performance figure"
        if smoke
        else "full-size SD1.5 / SDXL UNet+VAE+text encoders from public configs, random weights",
        "smoke": smoke,
        "device": str(device),
        "gpu": gpu,
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "note": "text2img everywhere; guidance > 1 doubles the UNet batch; engine times include PNG encoding",
        "total_s": round(time.perf_counter() - started, 1),
        "runs": rows,
        "speedup_vs_naive": speedups,
    }
    out = args.out or RESULTS / (
        "diffusion_smoke.json"
        if smoke
        else f"diffusion_{re.sub(r'[^a-z0-9]+', '_', gpu.lower()).strip('_')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    for key, value in speedups.items():
        print(f"  {key}: {value}x naive")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
