"""Tiny Stable Diffusion pipelines built from configs, for CPU tests with no download.

:func:`save_tiny_pipeline` writes a complete diffusers model folder (``model_index.json``, UNet, VAE, CLIP
text encoder(s), tokenizer(s), scheduler) with random weights, the way a user's downloaded or converted
checkpoint looks on disk. Tests then load it through ``DiffusionConfig(model=<folder>)`` exactly as a user
would. The tokenizer is a hand-written byte-level BPE vocabulary (every byte, alone and as a word end, no
merges), which ``CLIPTokenizer`` accepts with ``model_max_length=77`` (GUIDE section 4).

:func:`save_tiny_lora` makes a LoRA for the tiny UNet with peft and saves it as a diffusers LoRA
safetensors file, the format ``load_lora_weights`` reads.

Everything is seeded, so a folder built twice holds the same weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

__all__ = ["byte_vocab", "save_tiny_lora", "save_tiny_pipeline", "save_tiny_vae", "tiny_tokenizer"]

TEXT_DIM = 32


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable character table."""
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
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def byte_vocab() -> dict[str, int]:
    """Every byte character, then every byte character as a word end, then the two special tokens."""
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def tiny_tokenizer() -> CLIPTokenizer:
    return CLIPTokenizer(vocab=byte_vocab(), merges=[], model_max_length=77, pad_token="<|endoftext|>")


def _text_config(tokenizer: CLIPTokenizer, projection_dim: int = TEXT_DIM) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_DIM,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=projection_dim,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_act="gelu",
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
    )


def _scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
        steps_offset=1,
    )


def save_tiny_pipeline(folder: Path, family: str = "sd15", seed: int = 0) -> Path:
    """Write a tiny SD1.5-class (``"sd15"``) or SDXL-class (``"sdxl"``) pipeline folder; returns it."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer()
    pipe: Any
    if family == "sd15":
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=32,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=TEXT_DIM,
            norm_num_groups=32,
        )
        pipe = StableDiffusionPipeline(
            unet=unet,
            vae=_vae(),
            text_encoder=CLIPTextModel(_text_config(tokenizer)),
            tokenizer=tokenizer,
            scheduler=_scheduler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    elif family == "sdxl":
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=32,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 1),
            projection_class_embeddings_input_dim=80,  # 6 * 8 + 32
            cross_attention_dim=2 * TEXT_DIM,
            norm_num_groups=32,
        )
        pipe = StableDiffusionXLPipeline(
            unet=unet,
            vae=_vae(),
            text_encoder=CLIPTextModel(_text_config(tokenizer)),
            text_encoder_2=CLIPTextModelWithProjection(_text_config(tokenizer)),
            tokenizer=tokenizer,
            tokenizer_2=tokenizer,
            scheduler=_scheduler(),
        )
    else:
        raise ValueError(f"unknown family {family!r}")
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_vae(folder: Path, seed: int = 0) -> Path:
    """A tiny AutoencoderTiny (TAESD-shaped) folder."""
    torch.manual_seed(seed)
    vae = AutoencoderTiny(
        encoder_block_out_channels=(16, 16),
        decoder_block_out_channels=(16, 16),
        num_encoder_blocks=(1, 1),
        num_decoder_blocks=(1, 1),
        latent_channels=4,
        upsampling_scaling_factor=2,
    )
    vae.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_lora(model_folder: Path, out_folder: Path, seed: int = 1, rank: int = 4) -> Path:
    """A LoRA on the tiny UNet's attention projections (non-zero, so it changes the output), saved as
    ``<out_folder>/pytorch_lora_weights.safetensors``; returns the file."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(model_folder, subfolder="unet")
    unet.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
    with torch.no_grad():  # gaussian init leaves B at zero; make it bite
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(out_folder, unet_lora_layers=layers, safe_serialization=True)
    return out_folder / "pytorch_lora_weights.safetensors"
