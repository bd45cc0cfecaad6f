"""Train a small text-to-image latent diffusion model from scratch and save it as a diffusers
``StableDiffusionPipeline`` folder that :mod:`generation.diffusion` loads like any other model.

The parts, sized for what we can train (a 2-core CPU for about an hour, or a GPU for minutes):

- VAE: an ``AutoencoderTiny`` (TAESD's architecture) with a 4x spatial reduction: 64 px RGB -> 16 x 16 x 4.
  Flat-shaded chibi art compresses well; it trains first (stage ``vae``) and its latents are cached.
- Tokenizer: a ``CLIPTokenizer`` whose BPE merges turn every word of the training captions into one or a few
  tokens (built from the data; unknown words fall back to bytes, never to <unk>).
- Text encoder: a 3-layer ``CLIPTextModel`` (width 128), trained with the UNet.
- UNet: a ``UNet2DConditionModel`` (64/128/192 channels, cross-attention at 8 x 8 and 4 x 4), epsilon
  prediction on the Stable Diffusion noise schedule, min-SNR weighting, EMA weights for sampling.

Captions are the exact prompts the engine builds from a spec (see :mod:`generation.training.dataset`); 10% are
replaced by the engine's negative prompt so classifier-free guidance works with the engine's defaults.
"""

from __future__ import annotations

import copy
import json
import logging
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import regex
import torch
import torch.nn.functional as F

from generation import catalog
from generation.diffusion.prompting import build_prompt
from generation.training import dataset
from generation.training.common import (
    Run,
    batches,
    cosine_lr,
    grid_png,
    images_tensor,
    progress_bar,
    time_is_up,
)

__all__ = ["ENGINE_DEFAULTS", "build_tokenizer", "export_pipeline", "train"]

log = logging.getLogger(__name__)

VAE_LR = 2e-3
TEXT_WIDTH = 128
LATENT_CHANNELS = 8  # 16 x 16 x 8 for 64 x 64 x 3: 6x compression keeps colours exact
MAX_TOKENS = 77
# What the diffusion engine should use with this model; written beside the weights as chibify.json. A spec's
# avatar starts from its chibi render (img2img, the engine's own default): at 64 px this model follows the
# render's hair, colours and items far better than the words alone (bench/bench_training.py --tune-strength).
ENGINE_DEFAULTS: dict[str, Any] = {
    "text_mode": "img2img",
    "img2img_strength": 0.4,
    "selfie_init": "render",  # it only knows chibi art: a selfie starts from its spec's render, not the photo
    "selfie_strength": 0.4,
    "resolution": 64,
    "steps": 20,
    "guidance": 4.0,
    "style": dataset.TRAIN_STYLE,
    "dtype": "float32",
    "warmup": True,
}
_CLIP_SPLIT = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


# --- tokenizer -------------------------------------------------------------------------------------------


def _byte_chars() -> list[str]:
    """The GPT-2/CLIP byte -> printable character table, as a list indexed by byte."""
    keep = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    )
    table: dict[int, str] = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def caption_words(texts: Iterable[str]) -> list[str]:
    """The distinct words (CLIP's pre-tokenisation, lower-cased) of some texts, in first-seen order."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in _CLIP_SPLIT.findall(text.lower()):
            seen.setdefault(word, None)
    return list(seen)


def vocabulary_words(texts: Iterable[str]) -> list[str]:
    """Words for the tokenizer: the captions', the engine's negative prompt and every English catalog name."""
    extra = [build_prompt({}, style=dataset.TRAIN_STYLE).negative]
    for category in ("hair_style", "expression", "item", "outfit", "color", "skin_tone", "background"):
        for entry_id in catalog.ids(category):
            entry = catalog.get(category, entry_id)
            extra += [entry.en, *(s for s in entry.synonyms if s.isascii())]
    return caption_words([*texts, *extra])


def build_tokenizer(words: Sequence[str], folder: Path | None) -> Any:
    """A CLIPTokenizer (saved in ``folder`` unless None) that reads each word of ``words`` as few
    tokens. Vocabulary: every byte (alone and as a word end), then every merge result, so nothing is <unk>."""
    from transformers import CLIPTokenizer

    chars = _byte_chars()
    vocab: dict[str, int] = {}
    for token in [*chars, *(c + "</w>" for c in chars)]:
        vocab.setdefault(token, len(vocab))
    merges: list[tuple[str, str]] = []
    seen_merges: set[tuple[str, str]] = set()
    for word in words:
        symbols = [chars[b] for b in word.encode("utf-8")]
        symbols[-1] += "</w>"
        current = symbols[0]
        for nxt in symbols[1:]:
            pair = (current, nxt)
            if pair not in seen_merges:
                seen_merges.add(pair)
                merges.append(pair)
            current += nxt
            vocab.setdefault(current, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    tokenizer = CLIPTokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]  # the backend takes (a, b) pairs; the stub says strings
        model_max_length=MAX_TOKENS,
        pad_token="<|endoftext|>",
    )
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(folder)
    return tokenizer


# --- models ----------------------------------------------------------------------------------------------


def new_vae() -> Any:
    from diffusers import AutoencoderTiny

    return AutoencoderTiny(
        encoder_block_out_channels=(48, 48, 48),
        decoder_block_out_channels=(48, 48, 48),
        num_encoder_blocks=(1, 1, 1),
        num_decoder_blocks=(1, 1, 1),
        latent_channels=LATENT_CHANNELS,
    )


def new_text_encoder(vocab_size: int, tokenizer: Any) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=TEXT_WIDTH,
            intermediate_size=TEXT_WIDTH * 4,
            num_hidden_layers=3,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            projection_dim=TEXT_WIDTH,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def new_unet(latent_size: int) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        block_out_channels=(64, 128, 192),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=4,
        norm_num_groups=32,
    )


def noise_scheduler() -> Any:
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
        steps_offset=1,
    )


def sampling_scheduler() -> Any:
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler.from_config(noise_scheduler().config, algorithm_type="dpmsolver++")


# --- training --------------------------------------------------------------------------------------------


def _train_vae(
    run: Run, state: dict[str, Any], images: np.ndarray, steps: int, batch: int, bf16: bool, seed: int
) -> Any:
    vae = new_vae()
    if "vae" in state:
        vae.load_state_dict(state["vae"])
    done = int(state.get("vae_step", 0))
    if done >= steps:
        return vae
    vae.to(run.device).train()
    model = run.wrap(_Autoencode(vae))
    opt = torch.optim.AdamW(vae.parameters(), lr=VAE_LR, weight_decay=0.0)
    if "vae_opt" in state:
        opt.load_state_dict(state["vae_opt"])
    bar = progress_bar(steps, done, "vae", run.main)
    for step, idx in zip(
        range(done, steps), batches(len(images), batch, seed + done, run.rank, run.world), strict=False
    ):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, VAE_LR, 100)
        # fully convolutional: random 32 px crops (on the 4 px latent grid) teach it at a quarter of the cost
        crop = min(32, images.shape[1])
        oy, ox = (4 * random.randrange((images.shape[1] - crop) // 4 + 1) for _ in range(2))
        x = images_tensor(images[idx, oy : oy + crop, ox : ox + crop]).to(run.device)
        with run.autocast(bf16):
            z, recon = model(x)
            loss = F.mse_loss(recon.float(), x) + 0.5 * F.l1_loss(recon.float(), x)
            loss = (
                loss + 1e-3 * F.relu(z.float().abs() - 2.5).pow(2).mean()
            )  # keep latents off the decoder's clamp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.step_done(bar, step, 50, stage="vae", loss=loss.item())
        if (step + 1) % 500 == 0 or step + 1 == steps:
            state.update(vae=copy.deepcopy(vae.state_dict()), vae_opt=opt.state_dict(), vae_step=step + 1)
            run.save_checkpoint(state)
    bar.close()
    return vae


class _Autoencode(torch.nn.Module):
    """Encode then decode in one forward (so DDP sees it); AutoencoderTiny's own forward quantises."""

    def __init__(self, vae: Any) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.vae.encode(x).latents
        return z, self.vae.decode(z).sample


@torch.no_grad()
def _encode_all(vae: Any, images: np.ndarray, device: torch.device) -> torch.Tensor:
    vae.to(device).eval()
    out = []
    for start in range(0, len(images), 256):
        x = images_tensor(images[start : start + 256]).to(device)
        out.append(vae.encode(x).latents.float().cpu())
    return torch.cat(out)


def _assemble(vae: Any, text_encoder: Any, tokenizer: Any, unet: Any) -> Any:
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sampling_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


@torch.no_grad()
def sample(
    pipe: Any, prompts: Sequence[str], seed: int, steps: int = 20, guidance: float = 4.0
) -> np.ndarray:
    """(N, 64, 64, 3) uint8 from the real pipeline call, with the engine's negative prompt."""
    negative = build_prompt({}, style=dataset.TRAIN_STYLE).negative
    size = int(ENGINE_DEFAULTS["resolution"])
    generator = torch.Generator("cpu").manual_seed(seed)
    result = pipe(
        list(prompts),
        negative_prompt=[negative] * len(prompts),
        height=size,
        width=size,
        num_inference_steps=steps,
        guidance_scale=guidance,
        generator=generator,
        output_type="np",
    )
    return (np.asarray(result.images) * 255).round().clip(0, 255).astype(np.uint8)


def _augment(text: str, rng: random.Random, negative: str) -> str:
    roll = rng.random()
    if roll < 0.10:
        return negative  # the engine's unconditional branch
    if roll < 0.12:
        return ""
    if roll < 0.40:
        # users append their own words; repeat a few of the sample's tags, the way "pink hair, cat ears" does
        tags = [t.strip() for t in text.split(",")[9:] if t.strip()]
        if tags:
            return text + ", " + ", ".join(rng.sample(tags, min(len(tags), rng.randint(1, 3))))
    return text


def train(
    data: Path,
    out: Path,
    *,
    steps: int = 4000,
    vae_steps: int = 1500,
    batch: int = 32,
    lr: float = 4e-4,
    max_minutes: float | None = None,
    sample_every: int = 500,
    checkpoint_every: int = 100,
    device: str = "auto",
    bf16: bool = True,
    seed: int = 0,
    export: Path | None = None,
    init: Path | None = None,
    noise_offset: float = 0.0,
) -> dict[str, Any]:
    """Train (or resume) a run in ``out``; returns a summary. Stops at ``steps`` or after ``max_minutes``
    (a checkpoint is written either way; run the same command again to go on). Exports the pipeline folder
    to ``export`` (default ``out/pipeline``) when the run reaches ``steps``. ``init``: a pipeline folder made
    by this module (the shipped ``chibify-mini``, say) to fine-tune instead of starting from scratch; its VAE
    and tokenizer are kept as they are, its text encoder and UNet go on training. Read only on a new run.
    ``noise_offset``: add that much noise shared by all pixels of a channel ("offset noise"). The Stable
    Diffusion schedule leaves a trace of the picture at the last step (terminal SNR > 0), so a model learns
    to read an image's overall colours from it, and at sampling, from pure noise, falls back to the average
    (here: every skin the mean brown); offset noise hides that trace, so the prompt must say the colours."""
    from diffusers.training_utils import compute_snr

    torch.manual_seed(seed)
    run = Run.open(out, device)
    state = run.load_checkpoint() or {}
    if not state and init is not None:
        state = _state_from_pipeline(init, out / "tokenizer" if run.main else None, vae_steps)
    images, records = dataset.load_train(data)
    if images.shape[1] != ENGINE_DEFAULTS["resolution"]:
        log.warning(
            "dataset is %d px; this model is sized for %d px", images.shape[1], ENGINE_DEFAULTS["resolution"]
        )

    vae = _train_vae(run, state, images, vae_steps, max(batch, 32), bf16, seed)
    latents_file = out / "latents.pt"
    if latents_file.is_file():
        latents = torch.load(latents_file)
    else:
        latents = _encode_all(vae, images, run.device)
        if run.main:
            torch.save(latents, latents_file)
    if "scaling_factor" not in state:
        state["scaling_factor"] = float(1.0 / latents.std())
    scaling = float(state["scaling_factor"])
    vae.register_to_config(scaling_factor=scaling)
    vae.requires_grad_(False)

    if state.get("tokenizer_dir"):  # fine-tuning: the initial model's tokenizer, word ids unchanged
        from transformers import CLIPTokenizer

        tokenizer = CLIPTokenizer.from_pretrained(state["tokenizer_dir"])
    else:
        words = state.get("words") or vocabulary_words(r.text for r in records)
        state["words"] = words
        tokenizer = build_tokenizer(words, out / "tokenizer" if run.main else None)
    text_encoder = new_text_encoder(len(tokenizer), tokenizer)
    unet = new_unet(latents.shape[-1])
    if "unet" in state:
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
    ema = copy.deepcopy(unet)
    ema_text = copy.deepcopy(text_encoder)
    if "ema" in state:
        ema.load_state_dict(state["ema"])
        ema_text.load_state_dict(state["ema_text"])
    for m in (unet, text_encoder, ema, ema_text):
        m.to(run.device)
    ema.requires_grad_(False)
    ema_text.requires_grad_(False)
    params = [*unet.parameters(), *text_encoder.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    if "opt" in state:
        opt.load_state_dict(state["opt"])
    unet_ddp, text_ddp = run.wrap(unet), run.wrap(text_encoder)
    sched = noise_scheduler()
    negative = build_prompt({}, style=dataset.TRAIN_STYLE).negative
    texts = [r.text for r in records]
    held_out = dataset.load_split(data, "test", limit=16)[1]
    sample_prompts = [r.text for r in held_out] or texts[:16]

    done = int(state.get("unet_step", 0))
    rng = random.Random(seed * 1000 + done)
    bar = progress_bar(steps, done, "unet", run.main)
    last_loss = float("nan")

    def snapshot(step: int) -> None:
        state.update(
            unet=unet.state_dict(),
            text_encoder=text_encoder.state_dict(),
            ema=ema.state_dict(),
            ema_text=ema_text.state_dict(),
            opt=opt.state_dict(),
            unet_step=step,
        )
        run.save_checkpoint(state)

    completed = done
    for step, idx in zip(
        range(done, steps), batches(len(latents), batch, seed + 7 + done, run.rank, run.world), strict=False
    ):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, 200)
        x0 = latents[idx].to(run.device) * scaling
        captions = [_augment(texts[i], rng, negative) for i in idx]
        ids = tokenizer(
            captions, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
        ).input_ids
        noise = torch.randn_like(x0)
        if noise_offset:
            noise = noise + noise_offset * torch.randn(x0.shape[0], x0.shape[1], 1, 1, device=x0.device)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(idx),), device=run.device)
        noisy = sched.add_noise(x0, noise, t)
        with run.autocast(bf16):
            context = text_ddp(ids.to(run.device))[0]
            pred = unet_ddp(noisy, t, context).sample
        snr = compute_snr(sched, t)
        weight = torch.clamp(snr, max=5.0) / snr
        loss = (F.mse_loss(pred.float(), noise, reduction="none").mean(dim=(1, 2, 3)) * weight).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for target, source in ((ema, unet), (ema_text, text_encoder)):
                for e, p in zip(target.parameters(), source.parameters(), strict=True):
                    e.lerp_(p, 1 - decay)
        last_loss = loss.item()
        run.step_done(bar, step, 25, stage="unet", loss=last_loss, lr=opt.param_groups[0]["lr"])
        if (step + 1) % checkpoint_every == 0:
            snapshot(step + 1)
        if run.main and sample_every and ((step + 1) % sample_every == 0 or step + 1 == steps):
            pipe = _assemble(vae, ema_text, tokenizer, ema)
            grid_png(sample(pipe, sample_prompts, seed), out / "samples" / f"step_{step + 1:06d}.png")
        completed = step + 1
        if time_is_up(run, max_minutes):
            break
    bar.close()
    snapshot(completed)
    summary: dict[str, Any] = {
        "unet_step": completed,
        "steps": steps,
        "last_loss": last_loss,
        "minutes": round(run.elapsed() / 60, 1),
    }
    if completed >= steps and run.main:
        target = export or out / "pipeline"
        export_pipeline(
            _assemble(vae, ema_text, tokenizer, ema),
            target,
            {"training": summary, "dataset": dataset.read_manifest(data)},
        )
        summary["exported"] = str(target)
    run.close()
    return summary


def _state_from_pipeline(folder: Path, tokenizer_copy: Path | None, vae_steps: int) -> dict[str, Any]:
    """A starting checkpoint from a pipeline folder made by :func:`export_pipeline` (float32 weights, the
    VAE stage marked done, the tokenizer copied into the run so the run folder stands on its own)."""
    from diffusers import AutoencoderTiny, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    needed = ("vae", "unet", "text_encoder", "tokenizer")
    missing = [name for name in needed if not (folder / name).is_dir()]
    if missing:
        raise dataset.DatasetError(
            f"{folder} is not a pipeline folder made by chibify train diffusion (no {', '.join(missing)})"
        )
    vae = AutoencoderTiny.from_pretrained(folder / "vae", torch_dtype=torch.float32)
    if vae.config.latent_channels != LATENT_CHANNELS:
        raise dataset.DatasetError(
            f"{folder}: its VAE has {vae.config.latent_channels} latent channels, not {LATENT_CHANNELS}"
        )
    unet = UNet2DConditionModel.from_pretrained(folder / "unet", torch_dtype=torch.float32)
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", torch_dtype=torch.float32)
    if tokenizer_copy is not None:
        CLIPTokenizer.from_pretrained(folder / "tokenizer").save_pretrained(tokenizer_copy)
    return {
        "init_from": str(folder),
        "tokenizer_dir": str((tokenizer_copy or folder / "tokenizer").resolve()),
        "vae": vae.state_dict(),
        "vae_step": vae_steps,
        "scaling_factor": float(vae.config.scaling_factor),
        "unet": unet.state_dict(),
        "text_encoder": text_encoder.state_dict(),
        "ema": unet.state_dict(),
        "ema_text": text_encoder.state_dict(),
        "unet_step": 0,
    }


def export_pipeline(pipe: Any, folder: Path, provenance: dict[str, Any]) -> None:
    """Save a pipeline folder with fp16 safetensors weights (loaded back as float32 on a CPU) plus
    ``chibify.json``: the engine defaults this model was trained for and where it came from."""
    pipe = copy.deepcopy(pipe).to(torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True)
    (folder / "chibify.json").write_text(
        json.dumps({"engine": ENGINE_DEFAULTS, **provenance}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
