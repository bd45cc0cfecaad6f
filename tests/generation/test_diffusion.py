"""The diffusion engine on tiny pipelines: CPU only, no download, no network.

A tiny SD1.5-class model (and an SDXL-class one) is built from configs with random weights and saved to a
folder, then loaded through ``DiffusionConfig(model=<folder>)`` exactly as a user's model folder would be.
Random weights paint noise, so the tests assert what the engine controls: which pipeline ran with which
inputs (init picture, mask, strength, seeds), that pixels outside an edit's mask are the parent's, that a
picture depends on its own seed only (alone or in a batch), that a LoRA or an IP-Adapter changes the output
(and that an IP-Adapter changes nothing for jobs without a photo), and that failures stay with their jobs.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub is imported
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import asyncio
import io
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from generation.chibi import ChibiEngine
from generation.diffusion import DiffusionConfig, DiffusionConfigError, LoraSpec, build_prompt
from generation.diffusion.engine import Cancelled, DiffusionEngine, OutOfMemory, _dilate
from generation.jobs import GenerationRequest, GenerationResult
from generation.service import GenerationService
from generation.spec import AvatarSpec
from storage import Storage
from storage.jobstore import SqlJobStore
from tests.generation.tiny_pipes import save_tiny_lora, save_tiny_pipeline, save_tiny_vae

SIZE = 64
STEPS = 3
IP_EMBED_DIM = 16  # the tiny image encoder's projection size


# --- a tiny IP-Adapter ----------------------------------------------------------------------------------------


def save_tiny_image_encoder(folder: Path, projection_dim: int = IP_EMBED_DIM, seed: int = 3) -> Path:
    """A tiny CLIP image encoder (CLIPVisionModelWithProjection), saved the way h94/IP-Adapter ships one."""
    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        image_size=32,
        patch_size=8,
        projection_dim=projection_dim,
    )
    CLIPVisionModelWithProjection(config).save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_ip_adapter_state(model_folder: Path, seed: int = 2) -> dict[str, dict[str, torch.Tensor]]:
    """IP-Adapter weights for the tiny UNet, in the layout diffusers' ``load_ip_adapter`` reads.

    ``image_proj``: ``proj`` maps one image embed to 4 tokens of the UNet's cross-attention width, then
    ``norm`` (diffusers' ``ImageProjection``). ``ip_adapter``: for each cross-attention layer (``attn2``), in
    the UNet's ``attn_processors`` order, numbered 1, 3, 5, ...: ``to_k_ip`` and ``to_v_ip``, mapping the image
    tokens to that block's width (``_convert_ip_adapter_attn_to_diffusers``)."""
    unet = UNet2DConditionModel.from_pretrained(model_folder, subfolder="unet")
    cross = int(unet.config.cross_attention_dim)
    channels = list(unet.config.block_out_channels)
    torch.manual_seed(seed)
    image_proj = {
        "proj.weight": torch.randn(4 * cross, IP_EMBED_DIM),
        "proj.bias": torch.randn(4 * cross) * 0.1,
        "norm.weight": torch.ones(cross),
        "norm.bias": torch.zeros(cross),
    }
    ip_adapter: dict[str, torch.Tensor] = {}
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue  # self-attention: the adapter adds nothing there
        if name.startswith("mid_block"):
            width = channels[-1]
        elif name.startswith("up_blocks"):
            width = channels[::-1][int(name.split(".")[1])]
        else:
            width = channels[int(name.split(".")[1])]
        ip_adapter[f"{key_id}.to_k_ip.weight"] = torch.randn(width, cross)
        ip_adapter[f"{key_id}.to_v_ip.weight"] = torch.randn(width, cross)
        key_id += 2
    return {"image_proj": image_proj, "ip_adapter": ip_adapter}


def save_tiny_ip_adapter(model_folder: Path, folder: Path, *, as_bin: bool = False) -> Path:
    """``folder/ip-adapter_tiny.safetensors`` (keys prefixed ``image_proj.`` / ``ip_adapter.``) or ``.bin`` (the
    two-part dict), with its image encoder in ``folder/image_encoder``; returns the weights file."""
    folder.mkdir(parents=True, exist_ok=True)
    save_tiny_image_encoder(folder / "image_encoder")
    state = tiny_ip_adapter_state(model_folder)
    if as_bin:
        torch.save(state, folder / "ip-adapter_tiny.bin")
        return folder / "ip-adapter_tiny.bin"
    flat = {f"{part}.{key}": value for part, tensors in state.items() for key, value in tensors.items()}
    save_file(flat, str(folder / "ip-adapter_tiny.safetensors"))
    return folder / "ip-adapter_tiny.safetensors"


PHOTOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "photos"
SELFIES = ("obama.jpg", "rose_leslie.jpg")


def photo_png(which: int) -> bytes:
    """A real selfie from the shared development photos (a selfie job analyses its face first)."""
    path = PHOTOS / SELFIES[which % len(SELFIES)]
    if not path.is_file():
        pytest.skip("the shared test photos are not at ../shared/photos")
    return path.read_bytes()


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def no_network() -> Iterator[None]:
    """Any attempt to reach beyond this machine fails the test that made it."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"network access attempted: {address!r}")
        return real_connect(self, address)

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", guarded)
    torch.set_num_threads(1)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    sd15 = save_tiny_pipeline(root / "tiny-sd15", "sd15")
    return {
        "sd15": sd15,
        "sdxl": save_tiny_pipeline(root / "tiny-sdxl", "sdxl"),
        "taesd": save_tiny_vae(root / "tiny-taesd"),
        "lora": save_tiny_lora(sd15, root / "tiny-lora"),
    }


@pytest.fixture(scope="module")
def engine(models: dict[str, Path]) -> DiffusionEngine:
    return DiffusionEngine(DiffusionConfig(model=str(models["sd15"]), steps=STEPS, guidance=5.0))


@pytest.fixture(scope="module")
def ip_adapter(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ip-adapter")
    weights = save_tiny_ip_adapter(models["sd15"], root / "sd15")
    as_bin = save_tiny_ip_adapter(models["sd15"], root / "sd15-bin", as_bin=True)
    return {"weights": weights, "encoder": weights.parent / "image_encoder", "bin_folder": as_bin.parent}


@pytest.fixture(scope="module")
def ip_engine(models: dict[str, Path], ip_adapter: dict[str, Path]) -> DiffusionEngine:
    """The same model as ``engine``, with the tiny IP-Adapter, configured as an operator would (strings)."""
    options = {
        "model": str(models["sd15"]),
        "steps": str(STEPS),
        "guidance": "5",
        "ip_adapter": str(ip_adapter["weights"]),
        "ip_adapter_encoder": str(ip_adapter["encoder"]),
    }
    return DiffusionEngine(DiffusionConfig.from_options(options))


@pytest.fixture
def calls(engine: DiffusionEngine, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every pipeline call the engine makes (the real call still runs)."""
    seen: list[dict[str, Any]] = []
    real = DiffusionEngine._invoke

    def spy(self: DiffusionEngine, pipe: Any, call: dict[str, Any]) -> Any:
        seen.append({**call, "pipeline": type(pipe).__name__})
        return real(self, pipe, call)

    monkeypatch.setattr(DiffusionEngine, "_invoke", spy)
    return seen


def spec(seed: int = 7, **changes: Any) -> AvatarSpec:
    return AvatarSpec(seed=seed, **changes).resolved()


def req(s: AvatarSpec, **kw: Any) -> GenerationRequest:
    kw.setdefault("size", SIZE)
    return GenerationRequest(user_key="console:t", spec=s.to_json(), engine="diffusion", **kw)


def pixels(result: GenerationResult | BaseException) -> np.ndarray:
    assert isinstance(result, GenerationResult), result
    return np.asarray(Image.open(io.BytesIO(result.png)).convert("RGB"), dtype=np.int16)


def run(engine: DiffusionEngine, *requests: GenerationRequest) -> list[GenerationResult | BaseException]:
    return engine.run_batch(list(requests), lambda i, s, t: None)


def chibi_rgb(s: AvatarSpec, size: int = SIZE) -> np.ndarray:
    rgba = ChibiEngine().render_rgba(s, size).astype(np.float32)
    a = rgba[..., 3:4] / 255.0
    return (rgba[..., :3] * a + 255.0 * (1 - a)).round().astype(np.uint8)


# --- spec -> prompt, configuration (no torch needed) ---------------------------------------------------------


def test_prompt_is_anime_tags_from_the_spec_then_the_users_words() -> None:
    s = AvatarSpec(
        seed=3,
        hair={"style": "twin_tails", "color": "pink"},
        eyes={"color": "blue"},
        items=("cat_ears", "round_glasses"),
        expression="smile",
        background={"kind": "solid", "color": "sky blue"},
    )
    pair = build_prompt(s, "a cosy winter mood 冬天")
    tags = [t.strip() for t in pair.prompt.split(",")]
    assert tags[:4] == ["masterpiece", "best quality", "chibi", "super deformed"]
    for tag in (
        "pink hair",
        "twintails",
        "blue eyes",
        "smile",
        "cat ears",
        "round eyewear",
        "simple background",
    ):
        assert tag in tags, tag
    assert pair.prompt.endswith("a cosy winter mood")  # the user's Latin words last; Chinese dropped
    assert "worst quality" in pair.negative and "nsfw" in pair.negative
    assert build_prompt(s, "a cosy winter mood 冬天") == pair  # deterministic
    assert build_prompt(s.replace(hair={"color": "green"})).prompt != build_prompt(s).prompt


def test_config_from_string_options_and_back() -> None:
    cfg = DiffusionConfig.from_options(
        {
            "model": "/m",
            "steps": "4",
            "guidance": "0",
            "allow_download": "no",
            "loras": "/l/a.safetensors@0.7;/l/b",
            "ip_adapter": "/ip/models/ip-adapter_sd15.safetensors",
            "ip_adapter_encoder": "/ip/models/image_encoder",
            "ip_adapter_scale": "0.7",
        }
    )
    assert cfg.steps == 4 and cfg.guidance == 0.0 and not cfg.allow_download
    assert cfg.ip_adapter == "/ip/models/ip-adapter_sd15.safetensors" and cfg.ip_adapter_scale == 0.7
    assert cfg.ip_adapter_encoder == "/ip/models/image_encoder"
    assert DiffusionConfig().ip_adapter == "" and DiffusionConfig().ip_adapter_scale == 0.6
    assert cfg.loras == (LoraSpec("/l/a.safetensors", 0.7), LoraSpec("/l/b", 1.0))
    assert cfg.loras[0].adapter_name == "a"
    spec_ = cfg.engine_spec()
    assert spec_.target == "generation.diffusion.engine:DiffusionEngine"
    assert DiffusionConfig.from_options(dict(spec_.options)) == cfg
    with pytest.raises(DiffusionConfigError, match="unknown diffusion option 'stepz'"):
        DiffusionConfig.from_options({"stepz": 3})
    with pytest.raises(DiffusionConfigError, match="scheduler"):
        DiffusionConfig(scheduler="magic")
    with pytest.raises(DiffusionConfigError, match="ip_adapter_scale must be between 0 and 2"):
        DiffusionConfig.from_options({"ip_adapter": "/ip/a.safetensors", "ip_adapter_scale": "3"})
    with pytest.raises(DiffusionConfigError, match="ip_adapter_scale must be a number, not 'strong'"):
        DiffusionConfig.from_options({"ip_adapter_scale": "strong"})
    with pytest.raises(DiffusionConfigError, match="ip_adapter_encoder is set but ip_adapter is not"):
        DiffusionConfig(ip_adapter_encoder="/ip/models/image_encoder")
    with pytest.raises(DiffusionConfigError, match=r"\.safetensors or \.bin files .*not \.ckpt"):
        DiffusionConfig(ip_adapter="/ip/ip-adapter.ckpt")


def test_an_override_back_to_the_class_default_survives_the_trip_to_the_worker(tmp_path: Path) -> None:
    # the model folder says text2img; the operator asks for img2img (the class default): the worker must get it
    (tmp_path / "chibify.json").write_text(json.dumps({"engine": {"text_mode": "text2img", "steps": 20}}))
    assert DiffusionConfig.from_options({"model": str(tmp_path)}).text_mode == "text2img"
    cfg = DiffusionConfig.from_options({"model": str(tmp_path), "text_mode": "img2img", "steps": "30"})
    assert cfg.text_mode == "img2img" and cfg.steps == 30
    assert DiffusionConfig.from_options(dict(cfg.engine_spec().options)) == cfg


def test_importing_the_package_does_not_import_torch() -> None:
    code = (
        "import sys, generation.diffusion, generation.engines, generation.jobs;"
        "cfg = generation.diffusion.DiffusionConfig(model='/m');"
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- loading ------------------------------------------------------------------------------------------------


def test_a_hub_id_without_allow_download_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DiffusionConfigError, match="allow_download=true") as info:
        DiffusionEngine(DiffusionConfig(model="someone/chibi-model-not-cached"))
    assert "CHIBIFY_DIFFUSION_ALLOW_DOWNLOAD=1" in str(info.value)
    with pytest.raises(DiffusionConfigError, match="does not exist"):
        DiffusionEngine(DiffusionConfig(model=str(tmp_path / "missing")))
    with pytest.raises(DiffusionConfigError, match="no diffusion model configured"):
        DiffusionEngine(DiffusionConfig())
    (tmp_path / "empty").mkdir()
    with pytest.raises(DiffusionConfigError, match=r"model_index\.json"):
        DiffusionEngine(DiffusionConfig(model=str(tmp_path / "empty")))


# --- the three modes ----------------------------------------------------------------------------------------


def test_text2img_is_deterministic_per_seed_and_records_its_parameters(
    engine: DiffusionEngine, calls: list[dict[str, Any]]
) -> None:
    s = spec(11)
    request = req(s, prompt="sunny day", metadata=(("mode", "text2img"),))
    a, b = run(engine, request), run(engine, request)
    other = run(engine, req(spec(12), metadata=(("mode", "text2img"),)))
    assert calls[0]["pipeline"] == "StableDiffusionPipeline"
    result = a[0]
    assert isinstance(result, GenerationResult) and isinstance(b[0], GenerationResult)
    assert result.png == b[0].png  # same seed, same picture, byte for byte
    assert not np.array_equal(pixels(result), pixels(other[0]))
    assert (result.engine, result.model, result.width, result.height) == (
        "diffusion",
        "tiny-sd15",
        SIZE,
        SIZE,
    )
    assert result.spec == request.spec  # unchanged
    params = Image.open(io.BytesIO(result.png)).text["parameters"]
    prompt, negative, fields = params.split("\n")
    assert prompt == build_prompt(s, "sunny day").prompt
    assert negative.startswith("Negative prompt: nsfw")
    assert f"Steps: {STEPS}" in fields and "CFG scale: 5" in fields and "Seed: 11" in fields
    assert "Model: tiny-sd15" in fields and "Mode: text2img" in fields


def test_by_default_a_spec_starts_from_its_chibi_render(
    engine: DiffusionEngine, calls: list[dict[str, Any]]
) -> None:
    s = spec(21)
    [result] = run(engine, req(s))
    assert isinstance(result, GenerationResult)
    [call] = calls
    assert call["pipeline"] == "StableDiffusionImg2ImgPipeline"
    assert call["strength"] == engine.config.img2img_strength
    assert np.array_equal(np.asarray(call["image"][0]), chibi_rgb(s))
    assert "Mode: img2img, Denoising strength: 0.65" in Image.open(io.BytesIO(result.png)).text["parameters"]


def test_selfie_starts_from_the_head_crop_with_the_photo_derived_spec(
    engine: DiffusionEngine, calls: list[dict[str, Any]]
) -> None:
    from generation.face import analyze_photo, chibify_spec, decode_photo, head_crop

    photo = photo_png(0)
    asked = req(spec(5), kind="selfie", init_image=photo, prompt="pink hair, cat ears")
    [result] = run(engine, asked)
    assert isinstance(result, GenerationResult)
    [call] = calls
    assert call["pipeline"] == "StableDiffusionImg2ImgPipeline"
    assert call["strength"] == engine.config.selfie_strength
    decoded = decode_photo(photo)
    analysis = analyze_photo(decoded, seed=5)
    assert np.array_equal(np.asarray(call["image"][0]), head_crop(decoded, analysis, SIZE))
    # the stored spec is the photo's, with the user's words merged in; the prompt is built from it
    expected = chibify_spec(analysis, "pink hair, cat ears")
    assert result.spec == expected.to_json() != asked.spec
    assert result.spec["skin_tone"] == "brown" and "cat_ears" in result.spec["items"]
    # the PNG says what it shows: the resolved spec, as the chibi engine writes it
    written = Image.open(io.BytesIO(result.png)).text["parameters"].rsplit("Spec: ", 1)[1]
    assert json.loads(written) == expected.resolved().to_json()
    assert call["prompt"] == [build_prompt(expected, "pink hair, cat ears", style=engine.config.style).prompt]
    assert "dark skin" in call["prompt"][0] and "pink hair" in call["prompt"][0]


def test_selfie_can_start_from_the_render_of_its_spec(
    models: dict[str, Path], calls: list[dict[str, Any]]
) -> None:
    render_engine = DiffusionEngine(
        DiffusionConfig(model=str(models["sd15"]), steps=2, warmup=False, selfie_init="render")
    )
    [result] = run(render_engine, req(spec(6), kind="selfie", init_image=photo_png(1)))
    assert isinstance(result, GenerationResult)
    [call] = calls
    assert np.array_equal(np.asarray(call["image"][0]), chibi_rgb(AvatarSpec.from_json(result.spec)))
    with pytest.raises(DiffusionConfigError, match="selfie_init"):
        DiffusionConfig(selfie_init="face")


def test_edit_repaints_only_the_changed_region_with_the_same_seed(
    engine: DiffusionEngine, calls: list[dict[str, Any]]
) -> None:
    old = spec(31)
    new = old.with_item("witch_hat")
    [parent] = run(engine, req(old))
    parent_png = parent.png if isinstance(parent, GenerationResult) else b""
    calls.clear()
    [child] = run(engine, req(new, kind="edit", parent_spec=old.to_json(), init_image=parent_png))

    [call] = calls
    assert call["pipeline"] == "StableDiffusionInpaintPipeline"
    assert call["strength"] == engine.config.inpaint_strength
    assert call["generator"][0].initial_seed() == old.seed == new.seed
    mask = np.asarray(call["mask_image"][0]) > 127
    expected = _dilate(ChibiEngine().region_for_change(old, new, SIZE), SIZE // 64)
    assert np.array_equal(mask, expected) and 0 < mask.mean() < 0.6
    before, after = pixels(parent), pixels(child)
    assert np.array_equal(before[~mask], after[~mask])  # the rest stays, exactly
    assert np.abs(before[mask] - after[mask]).mean() > 1.0  # the hat region was repainted
    # The inpaint starts from the parent picture with the new part drawn in by the chibi engine.
    init = np.asarray(call["image"][0])
    assert np.array_equal(init[~mask], before[~mask].astype(np.uint8))
    assert np.array_equal(init[mask], chibi_rgb(new)[mask])


def test_an_edit_with_nothing_visible_to_change_returns_the_parent(
    engine: DiffusionEngine, calls: list[dict[str, Any]]
) -> None:
    s = spec(41)
    [result] = run(engine, req(s, kind="edit", parent_spec=s.to_json()))
    assert calls == [] and isinstance(result, GenerationResult)
    assert np.abs(pixels(result) - chibi_rgb(s)).max() == 0


# --- batching ------------------------------------------------------------------------------------------------


def test_mixed_batch_gives_each_request_the_picture_it_gets_alone(
    engine: DiffusionEngine, calls: list[dict[str, Any]]
) -> None:
    old = spec(51)
    requests = [
        req(spec(52)),
        req(spec(53), metadata=(("mode", "text2img"),)),
        req(spec(54)),
        req(old.with_item("crown"), kind="edit", parent_spec=old.to_json()),
        req(spec(55), prompt="with a ribbon"),
    ]
    events: list[tuple[int, int, int]] = []
    batched = engine.run_batch(requests, lambda i, s, t: events.append((i, s, t)))
    # Three compatible img2img requests share one call; text2img and the edit get theirs.
    assert sorted(len(c["prompt"]) for c in calls) == [1, 1, 3]
    assert [g.initial_seed() for c in calls if len(c["prompt"]) == 3 for g in c["generator"]] == [52, 54, 55]
    for index, request in enumerate(requests):
        [alone] = run(engine, request)
        diff = np.abs(pixels(batched[index]) - pixels(alone))
        assert diff.max() <= 2, (index, diff.max())  # float noise of batched maths at most
        finals = [(s, t) for i, s, t in events if i == index]
        assert finals and finals[-1][0] == finals[-1][1]  # progress reached the last step


def test_out_of_memory_halves_the_batch_and_retries_once(
    engine: DiffusionEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real = DiffusionEngine._invoke
    limit = {"n": 2}

    def tight(self: DiffusionEngine, pipe: Any, call: dict[str, Any]) -> Any:
        sizes.append(len(call["prompt"]))
        if len(call["prompt"]) > limit["n"]:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, pipe, call)

    monkeypatch.setattr(DiffusionEngine, "_invoke", tight)
    monkeypatch.setattr(engine, "max_batch", 4)
    requests = [req(spec(60 + i)) for i in range(4)]
    results = run(engine, *requests)
    assert sizes == [4, 2, 2] and engine.max_batch == 2
    assert all(isinstance(r, GenerationResult) for r in results)

    # Still too big after halving: those jobs fail with a clear message, nothing is retried again.
    sizes.clear()
    limit["n"] = 0
    monkeypatch.setattr(engine, "max_batch", 4)
    results = run(engine, *requests[:2], req(spec(9), kind="edit", parent_spec=spec(9).to_json()))
    assert sizes == [2, 1, 1]
    assert all(
        isinstance(r, OutOfMemory) and "out of memory even at batch size 1" in str(r) for r in results[:2]
    )
    assert isinstance(results[2], GenerationResult)  # the invisible edit needed no GPU


def test_bad_requests_fail_alone(engine: DiffusionEngine) -> None:
    good = req(spec(70))
    bad_spec = GenerationRequest(
        user_key="console:t", spec={"hair": {"style": "mohawk"}}, engine="diffusion", size=SIZE
    )
    other_model = req(spec(71), model="some-other-model")
    broken_photo = req(spec(72), kind="selfie", init_image=b"not a picture")
    no_face = io.BytesIO()
    Image.new("RGB", (200, 160), (120, 180, 220)).save(no_face, format="PNG")
    faceless = req(spec(73), kind="selfie", init_image=no_face.getvalue())
    results = run(engine, bad_spec, good, other_model, broken_photo, faceless)
    assert isinstance(results[1], GenerationResult)
    assert "mohawk" in str(results[0])
    assert "not loaded here" in str(results[2])
    assert isinstance(results[3], BaseException)
    assert isinstance(results[4], BaseException) and "face" in str(results[4]).lower()


def test_cancel_stops_between_steps(engine: DiffusionEngine) -> None:
    steps: list[int] = []

    def progress(index: int, step: int, total: int) -> None:
        steps.append(step)
        engine.cancel()

    text = (("mode", "text2img"),)
    results = engine.run_batch([req(spec(80), metadata=text), req(spec(81), metadata=text)], progress)
    assert all(isinstance(r, Cancelled) for r in results)
    assert steps == [1, 1]  # both saw step 1, neither reached step 2
    assert isinstance(run(engine, req(spec(80), metadata=text))[0], GenerationResult)  # the next batch runs


# --- LoRA, tiny VAE, SDXL ------------------------------------------------------------------------------------


def test_a_local_lora_loads_through_the_real_loader_and_changes_the_picture(
    models: dict[str, Path], engine: DiffusionEngine
) -> None:
    request = req(spec(90), metadata=(("mode", "text2img"),))
    base = pixels(run(engine, request)[0])
    lora = LoraSpec(str(models["lora"]), weight=0.8)
    common = {"model": str(models["sd15"]), "steps": STEPS, "guidance": 5.0, "warmup": False}
    fused = DiffusionEngine(DiffusionConfig(loras=(lora,), **common))
    live = DiffusionEngine(DiffusionConfig(loras=(lora,), fuse_loras=False, **common))
    with_fused, with_live = pixels(run(fused, request)[0]), pixels(run(live, request)[0])
    assert np.abs(with_fused - base).mean() > 2.0
    assert np.abs(with_fused - with_live).max() <= 3  # folding the LoRA in gives the same picture
    result = run(fused, request)[0]
    assert isinstance(result, GenerationResult)
    assert "LoRA: pytorch_lora_weights:0.8" in Image.open(io.BytesIO(result.png)).text["parameters"]


def test_sdxl_class_model_with_a_tiny_vae(models: dict[str, Path]) -> None:
    cfg = DiffusionConfig(model=str(models["sdxl"]), steps=2, guidance=0.0, tiny_vae=str(models["taesd"]))
    xl = DiffusionEngine(cfg)
    assert xl.pipes.family == "sdxl" and type(xl.pipes.text2img.vae).__name__ == "AutoencoderTiny"
    old = spec(100)
    results = run(
        xl,
        req(old),
        req(spec(101), metadata=(("mode", "text2img"),)),
        req(old.with_item("beanie"), kind="edit", parent_spec=old.to_json()),
    )
    assert all(isinstance(r, GenerationResult) and r.model == "tiny-sdxl" for r in results), results
    assert type(xl.pipes.inpaint).__name__ == "StableDiffusionXLInpaintPipeline"


# --- IP-Adapter (selfies) -------------------------------------------------------------------------------------


def test_an_ip_adapter_loads_through_the_real_loader_and_steers_selfies(
    models: dict[str, Path],
    ip_adapter: dict[str, Path],
    engine: DiffusionEngine,
    ip_engine: DiffusionEngine,
    calls: list[dict[str, Any]],
) -> None:
    pipes = ip_engine.pipes
    assert pipes.ip_adapter == "ip-adapter_tiny"
    # from_pipe shares the encoder; the adapter's processors survived the switch to SDPA.
    assert pipes.img2img.image_encoder is pipes.text2img.image_encoder is pipes.inpaint.image_encoder
    assert pipes.img2img.feature_extractor is pipes.text2img.feature_extractor
    kinds = {type(p).__name__ for p in pipes.text2img.unet.attn_processors.values()}
    assert kinds == {"AttnProcessor2_0", "IPAdapterAttnProcessor2_0"}

    selfie = req(spec(120), kind="selfie", init_image=photo_png(0))
    first, again = run(ip_engine, selfie), run(ip_engine, selfie)
    assert isinstance(first[0], GenerationResult) and isinstance(again[0], GenerationResult)
    assert first[0].png == again[0].png  # deterministic with the seed, byte for byte
    [call, _] = calls
    assert call["pipeline"] == "StableDiffusionImg2ImgPipeline" and call["strength"] == 0.6
    [embeds] = call["ip_adapter_image_embeds"]
    assert embeds.shape == (2, 1, IP_EMBED_DIM)  # [negative; positive] for one picture (CFG)
    assert not embeds[0].any() and embeds[1].abs().sum() > 0  # zero negative, the photo's positive
    params = Image.open(io.BytesIO(first[0].png)).text["parameters"]
    assert "Mode: img2img, Denoising strength: 0.6, IP-Adapter: ip-adapter_tiny:0.6, Engine" in params

    # The same job at scale 0 (a .bin adapter in a folder, its encoder found next to it): the adapter is
    # loaded but has no say, so the picture differs from the one at 0.6 and equals the one without adapter.
    zero = DiffusionEngine(
        DiffusionConfig.from_options(
            {
                "model": str(models["sd15"]),
                "steps": STEPS,
                "guidance": 5.0,
                "warmup": False,
                "ip_adapter": str(ip_adapter["bin_folder"]),
                "ip_adapter_scale": 0,
            }
        )
    )
    assert zero.pipes.ip_adapter == "ip-adapter_tiny"
    at_zero = pixels(run(zero, selfie)[0])
    assert np.abs(pixels(first[0]) - at_zero).mean() > 2.0  # the adapter is used
    assert np.array_equal(at_zero, pixels(run(engine, selfie)[0]))


def test_with_an_ip_adapter_text_jobs_are_unchanged_and_batch_beside_selfies(
    engine: DiffusionEngine, ip_engine: DiffusionEngine, calls: list[dict[str, Any]]
) -> None:
    old = spec(131)
    requests = [
        req(spec(130), kind="selfie", init_image=photo_png(0)),
        req(spec(132), metadata=(("mode", "text2img"),)),
        req(spec(133)),  # img2img from the chibi render
        req(spec(134), kind="selfie", init_image=photo_png(1)),
        req(old.with_item("crown"), kind="edit", parent_spec=old.to_json()),
    ]
    mixed = run(ip_engine, *requests)
    assert all(isinstance(r, GenerationResult) for r in mixed), mixed
    # The two selfies share one call, one photo each; each other job has its own call, with zero embeds.
    by_size = sorted(calls, key=lambda c: len(c["prompt"]))
    assert [len(c["prompt"]) for c in by_size] == [1, 1, 1, 2]
    selfies = by_size[-1]
    assert [g.initial_seed() for g in selfies["generator"]] == [130, 134]
    [embeds] = selfies["ip_adapter_image_embeds"]
    assert embeds.shape == (4, 1, IP_EMBED_DIM) and not torch.equal(embeds[2], embeds[3])
    for call in by_size[:-1]:
        assert not call["ip_adapter_image_embeds"][0].any()

    # A job without a photo gets exactly the picture the engine without the adapter gives: at scale 0 the
    # adapter's attention is skipped, so the maths is the same, bit for bit.
    plain = run(engine, *requests)
    for index in (1, 2, 4):
        result = mixed[index]
        assert isinstance(result, GenerationResult)
        assert np.array_equal(pixels(result), pixels(plain[index])), index
        assert "IP-Adapter" not in Image.open(io.BytesIO(result.png)).text["parameters"]
    # Each selfie gets its own photo, not its batch-mate's: batched as alone (float noise at most).
    for index in (0, 3):
        [alone] = run(ip_engine, requests[index])
        assert np.abs(pixels(mixed[index]) - pixels(alone)).max() <= 2, index
    assert np.abs(pixels(mixed[0]) - pixels(mixed[3])).mean() > 2.0


def test_an_sdxl_class_model_takes_an_ip_adapter_without_cfg(models: dict[str, Path], tmp_path: Path) -> None:
    weights = save_tiny_ip_adapter(models["sdxl"], tmp_path / "xl")
    xl = DiffusionEngine(
        DiffusionConfig(
            model=str(models["sdxl"]), steps=2, guidance=0.0, warmup=False, ip_adapter=str(weights)
        )
    )
    selfies = [req(spec(140 + i), kind="selfie", init_image=photo_png(i)) for i in range(2)]
    text = req(spec(142), metadata=(("mode", "text2img"),))
    mixed = run(xl, *selfies, text)
    assert all(isinstance(r, GenerationResult) for r in mixed), mixed
    for index, request in enumerate(selfies):
        assert np.abs(pixels(mixed[index]) - pixels(run(xl, request)[0])).max() <= 2


def test_bad_ip_adapter_settings_are_clear_errors(
    models: dict[str, Path], ip_adapter: dict[str, Path], tmp_path: Path
) -> None:
    def load(**options: Any) -> None:
        DiffusionEngine(
            DiffusionConfig.from_options({"model": str(models["sd15"]), "warmup": False, **options})
        )

    with pytest.raises(DiffusionConfigError, match="ip_adapter_scale must be between 0 and 2, not 3"):
        load(ip_adapter=str(ip_adapter["weights"]), ip_adapter_scale=3)
    missing = tmp_path / "ip-adapter_sd15.safetensors"
    with pytest.raises(DiffusionConfigError, match=r"IP-Adapter weights .* do not exist: set ip_adapter"):
        load(ip_adapter=str(missing))
    with pytest.raises(DiffusionConfigError, match=r"downloading is off.*allow_download=true"):
        load(ip_adapter="h94/IP-Adapter/models/ip-adapter_sd15.safetensors")
    with pytest.raises(DiffusionConfigError, match="is not an IP-Adapter weights file"):
        load(ip_adapter=str(models["lora"]))  # a LoRA is not an IP-Adapter
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(ip_adapter["weights"], alone / "ip-adapter_tiny.safetensors")
    with pytest.raises(DiffusionConfigError, match="no image encoder next to the IP-Adapter weights"):
        load(ip_adapter=str(alone))
    with pytest.raises(DiffusionConfigError, match=r"image encoder folder .* does not exist"):
        load(ip_adapter=str(alone), ip_adapter_encoder=str(tmp_path / "image_encoder"))
    shutil.copy(ip_adapter["weights"], alone / "ip-adapter_other.safetensors")
    with pytest.raises(DiffusionConfigError, match="several weight files"):
        load(ip_adapter=str(alone))
    wrong_encoder = save_tiny_image_encoder(tmp_path / "wide_encoder", projection_dim=24)
    with pytest.raises(DiffusionConfigError, match="do not fit its image encoder"):
        load(ip_adapter=str(ip_adapter["weights"]), ip_adapter_encoder=str(wrong_encoder))
    with pytest.raises(DiffusionConfigError, match=r"cannot be loaded into this sdxl model.*made for SDXL"):
        DiffusionEngine(
            DiffusionConfig(model=str(models["sdxl"]), warmup=False, ip_adapter=str(ip_adapter["weights"]))
        )


# --- in the real worker process --------------------------------------------------------------------------------


async def test_the_engine_runs_in_the_worker_process_through_the_service(
    models: dict[str, Path], sqlite_storage: Storage
) -> None:
    cfg = DiffusionConfig(model=str(models["sd15"]), steps=2, warmup=False)
    service = GenerationService(
        SqlJobStore(sqlite_storage),
        engines=(cfg.engine_spec(),),
        job_timeout_s=60.0,
        worker_start_timeout_s=60.0,
        batch_window_s=0.2,
    )
    await service.start()
    try:
        handles = [await service.submit(req(spec(110 + i))) for i in range(2)]
        async with asyncio.timeout(60):
            results = [await h.result() for h in handles]
        for result in results:
            assert result.engine == "diffusion" and result.model == "tiny-sd15"
            assert result.png.startswith(b"\x89PNG") and result.stored["public_id"]
        kinds = [e.kind async for e in handles[0].events()]
        assert "step" in kinds and kinds[-1] == "done"
    finally:
        await service.stop(drain_timeout=5.0)
