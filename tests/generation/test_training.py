"""Training: the dataset builder, the tokenizer, and short real runs of every trainer (resume included), each
exported and loaded back the way the engines load them. No download anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.cli import main
from generation.diffusion.prompting import build_prompt
from generation.spec import AvatarSpec
from generation.training import dataset
from generation.training.labels import HEADS, ITEMS, condition_size, condition_vector, labels_of


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "chibi64"
    dataset.build_renders(out, 48, 64, seed=5)
    return out


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- dataset ---------------------------------------------------------------------------------------------


def test_render_dataset_has_images_captions_specs_and_a_held_out_split(renders: Path) -> None:
    manifest = json.loads((renders / "dataset.json").read_text())
    assert manifest["source"] == "chibi" and manifest["count"] == 48 and manifest["size"] == 64
    rows = [json.loads(line) for line in (renders / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 48 and {r["split"] for r in rows} <= {"train", "test"}
    assert manifest["splits"]["train"] + manifest["splits"]["test"] == 48
    for row in rows[:10]:
        with Image.open(renders / row["file_name"]) as img:
            assert img.size == (64, 64) and img.mode == "RGB"
        spec = AvatarSpec.from_json(row["spec"])
        # training text is exactly what the diffusion engine will write for this spec
        assert row["text"] == build_prompt(spec, style=dataset.TRAIN_STYLE).prompt
        assert row["caption_en"] and row["caption_zh"].startswith("Q版头像")


def test_render_dataset_is_deterministic_and_never_overwrites(renders: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    dataset.build_renders(again, 48, 64, seed=5, workers=2)
    assert (again / "metadata.jsonl").read_bytes() == (renders / "metadata.jsonl").read_bytes()
    assert (again / "images/000007.png").read_bytes() == (renders / "images/000007.png").read_bytes()
    with pytest.raises(dataset.DatasetError, match="not empty"):
        dataset.build_renders(again, 4, 64)


def test_held_out_split_is_stable_as_the_dataset_grows(renders: Path, tmp_path: Path) -> None:
    bigger = tmp_path / "bigger"
    dataset.build_renders(bigger, 96, 32, seed=5)
    small = [json.loads(x)["split"] for x in (renders / "metadata.jsonl").read_text().splitlines()]
    big = [json.loads(x)["split"] for x in (bigger / "metadata.jsonl").read_text().splitlines()]
    assert big[:48] == small and "test" in big  # about 5% held out


def test_from_folder_uses_sidecar_captions_and_reports_what_it_skipped(tmp_path: Path) -> None:
    src = tmp_path / "art"
    src.mkdir()
    Image.new("RGB", (120, 80), (250, 120, 180)).save(src / "pink.png")
    (src / "pink.txt").write_text("a pink chibi\n")
    Image.new("RGBA", (50, 90), (10, 20, 200, 128)).save(src / "blue.webp")
    (src / "blue.txt").write_text("blue   chibi, smiling")
    Image.new("RGB", (64, 64)).save(src / "nocaption.jpg")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (src / "broken.txt").write_text("broken")
    manifest = dataset.build_from_folder(src, tmp_path / "out", size=32)
    assert manifest["source"] == "folder" and manifest["splits"]["train"] + manifest["splits"]["test"] == 2
    assert any("nocaption.jpg: no caption" in s for s in manifest["skipped"])
    assert any("broken.png: cannot be read" in s for s in manifest["skipped"])
    images, records = dataset.load_split(tmp_path / "out", "train")
    images_t, records_t = dataset.load_split(tmp_path / "out", "test")
    texts = {r.text for r in [*records, *records_t]}
    assert texts == {"a pink chibi", "blue chibi, smiling"}
    assert {im.shape for im in [*images, *images_t]} == {(32, 32, 3)}


def test_from_folder_without_captions_or_images_says_what_is_missing(tmp_path: Path) -> None:
    src = tmp_path / "art"
    src.mkdir()
    with pytest.raises(dataset.DatasetError, match="holds no images"):
        dataset.build_from_folder(src, tmp_path / "out")
    Image.new("RGB", (8, 8)).save(src / "a.png")
    with pytest.raises(dataset.DatasetError, match="has a caption"):
        dataset.build_from_folder(src, tmp_path / "out")


def test_dataset_command_line_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        capsys, "dataset", "build", "--out", str(tmp_path / "d"), "--count", "6", "--size", "32"
    )
    assert code == 0, err
    assert json.loads(out)["count"] == 6 and len(list((tmp_path / "d/images").iterdir())) == 6
    code, _, err = _run(capsys, "dataset", "build", "--out", str(tmp_path / "e"), "--size", "5")
    assert code == 2 and "--size must be between 32 and 1024" in err
    code, _, err = _run(
        capsys, "train", "gan", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")
    )
    assert code == 2 and "not a Chibify dataset" in err and "chibify dataset build" in err
    code, _, err = _run(
        capsys,
        "train",
        "diffusion",
        "--data",
        str(tmp_path / "d"),
        "--out",
        str(tmp_path / "r"),
        "--steps",
        "0",
    )
    assert code == 2 and "--steps must be at least 1" in err


# --- labels and tokenizer --------------------------------------------------------------------------------


def test_labels_follow_the_spec() -> None:
    spec = AvatarSpec(hair={"style": "twin_tails", "color": "#f49ac1"}, expression="wink", items=["cat_ears"])
    labels = labels_of(spec)
    assert HEADS["hair_color"][labels.heads["hair_color"]] == "pink"
    assert HEADS["hair_style"][labels.heads["hair_style"]] == "twin_tails"
    assert [ITEMS[i] for i in labels.items] == ["cat_ears"]
    vec = condition_vector(labels)
    assert vec.shape == (condition_size(),) and vec.sum() == 5  # four one-hots and one item
    bald = labels_of(AvatarSpec(hair={"style": "bald"}))
    assert bald.heads["hair_color"] == -1  # no hair colour to ask for or grade


def test_the_label_set_is_frozen_and_the_catalog_may_grow_past_it() -> None:
    """The shipped models' label set stays theirs: every id in it is still in the catalog, and an entry
    the catalog gained later has no label (rather than shifting every index after it)."""
    from generation import catalog

    for head, category in (
        ("hair_color", "color"),
        ("hair_style", "hair_style"),
        ("expression", "expression"),
    ):
        assert set(HEADS[head]) <= set(catalog.ids(category)), head
    assert set(HEADS["skin_tone"]) <= set(catalog.ids("skin_tone"))
    assert set(ITEMS) <= set(catalog.ids("item"))
    newer = [i for i in catalog.ids("item") if i not in ITEMS]
    if newer:
        labels = labels_of(AvatarSpec(items=[newer[0], "cat_ears"]))
        assert [ITEMS[i] for i in labels.items] == ["cat_ears"]
    newer_colours = [c for c in catalog.ids("color") if c not in HEADS["hair_color"]]
    if newer_colours:
        hex_value = catalog.get("color", newer_colours[0]).hex
        assert labels_of(AvatarSpec(hair={"color": hex_value})).heads["hair_color"] == -1


def test_tokenizer_reads_every_caption_word_without_unknowns(renders: Path, tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    from generation.training.diffusion import build_tokenizer, vocabulary_words

    _, records = dataset.load_split(renders, "train")
    build_tokenizer(vocabulary_words(r.text for r in records), tmp_path / "tok")
    tok = CLIPTokenizer.from_pretrained(tmp_path / "tok")
    text = records[0].text
    ids = tok(text).input_ids
    assert tok.unk_token_id not in ids[1:-1]
    words = [t for t in tok.convert_ids_to_tokens(ids) if t.endswith("</w>")]
    assert "hair</w>" in words and "masterpiece</w>" in words
    assert (
        tok.decode(ids, skip_special_tokens=True).replace(" ", "")
        == text.lower().replace(" ", "")[: len(tok.decode(ids, skip_special_tokens=True).replace(" ", ""))]
    )
    # words it never saw still encode (as bytes), never as <unk>
    assert tok.unk_token_id not in tok("zyzzyva 粉色").input_ids[1:-1]


# --- short real training runs ----------------------------------------------------------------------------


def test_diffusion_run_resumes_exports_and_loads_through_the_engine_config(
    renders: Path, tmp_path: Path
) -> None:
    from generation.diffusion.config import DiffusionConfig
    from generation.diffusion.loader import load_pipelines
    from generation.training import diffusion

    run = tmp_path / "run"
    first = diffusion.train(renders, run, steps=3, vae_steps=2, batch=4, max_minutes=0, sample_every=0)
    assert first["unet_step"] == 1 and "exported" not in first  # stopped by the time limit, checkpointed
    second = diffusion.train(renders, run, steps=3, vae_steps=2, batch=4, sample_every=3)
    assert second["unet_step"] == 3 and Path(second["exported"]).is_dir()
    steps = [json.loads(x)["step"] for x in (run / "loss.jsonl").read_text().splitlines() if '"unet"' in x]
    assert steps == [0]  # step 0 logged once: the resumed run went on from step 1
    assert (run / "samples/step_000003.png").is_file()
    folder = run / "pipeline"
    config = DiffusionConfig.from_options({"model": str(folder)})
    assert config.text_mode == "img2img" and config.resolution == 64  # chibify.json applies...
    assert config.img2img_strength == diffusion.ENGINE_DEFAULTS["img2img_strength"] != 0.65
    assert (
        DiffusionConfig.from_options({"model": str(folder), "steps": "7"}).steps == 7
    )  # ...unless overridden
    pipes = load_pipelines(DiffusionConfig.from_options({"model": str(folder), "warmup": "false"}))
    assert pipes.vae_scale_factor == 4 and type(pipes.text2img.vae).__name__ == "AutoencoderTiny"
    images = diffusion.sample(pipes.text2img, ["pink hair, cat ears"], seed=1, steps=2)
    assert images.shape == (1, 64, 64, 3)


def test_diffusion_fine_tunes_an_exported_model_keeping_its_vae_and_tokenizer(
    renders: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from safetensors.torch import load_file

    from generation.training import diffusion

    base = diffusion.train(renders, tmp_path / "base", steps=1, vae_steps=1, batch=4, sample_every=0)
    base_folder = Path(base["exported"])
    tuned = diffusion.train(
        renders,
        tmp_path / "tuned",
        steps=2,
        batch=4,
        lr=1e-9,
        sample_every=0,
        init=base_folder,
        noise_offset=0.1,
    )
    assert tuned["unet_step"] == 2
    stages = {json.loads(x)["stage"] for x in (tmp_path / "tuned/loss.jsonl").read_text().splitlines()}
    assert stages == {"unet"}, "the VAE came from the initial model, not trained again"
    tuned_folder = Path(tuned["exported"])
    for part in ("vae", "unet"):
        before = load_file(next((base_folder / part).glob("*.safetensors")))
        after = load_file(next((tuned_folder / part).glob("*.safetensors")))
        assert before.keys() == after.keys()
        assert all(torch.allclose(before[k].float(), after[k].float(), atol=1e-2) for k in before)
    vocab = "tokenizer/tokenizer.json"
    assert (base_folder / vocab).read_text() == (tuned_folder / vocab).read_text()
    code, _, err = _run(
        capsys, "train", "diffusion", "--data", str(renders), "--out", str(tmp_path / "x"),
        "--init", str(tmp_path / "nowhere"),
    )  # fmt: skip
    assert code != 0 and "--init" in err and "no such model folder" in err
    code, _, err = _run(
        capsys, "train", "diffusion", "--data", str(renders), "--out", str(tmp_path / "y"),
        "--init", str(renders),
    )  # fmt: skip
    assert code != 0 and "not a pipeline folder" in err
    code, _, err = _run(
        capsys, "train", "diffusion", "--data", str(renders), "--out", str(tmp_path / "z"),
        "--noise-offset", "2",
    )  # fmt: skip
    assert code != 0 and "--noise-offset must be between 0 and 1" in err


def test_gan_run_exports_a_generator_the_engine_serves(renders: Path, tmp_path: Path) -> None:
    from generation.engines import build_engine, engine_spec
    from generation.jobs import EngineSpec, GenerationRequest
    from generation.training import gan

    summary = gan.train(renders, tmp_path / "gan", steps=2, batch=8, sample_every=2)
    assert summary["exported"] and (tmp_path / "gan/samples/step_000002.png").is_file()
    model = Path(summary["exported"])
    spec = engine_spec("gan")
    engine = build_engine(EngineSpec(name="gan", target=spec.target, options=(("model", str(model)),)))
    requests = [
        GenerationRequest(
            user_key="t", engine="gan", spec=AvatarSpec(seed=i, items=["crown"]).to_json(), size=128
        )
        for i in range(2)
    ]
    steps: list[tuple[int, int, int]] = []
    results = engine.run_batch(requests, lambda *a: steps.append(a))
    for result in results:
        assert not isinstance(result, BaseException)
        with Image.open(__import__("io").BytesIO(result.png)) as img:
            assert img.size == (128, 128)
        assert result.engine == "gan" and result.spec["items"] == ["crown"]
    assert sorted(steps) == [(0, 1, 1), (1, 1, 1)]


def test_gan_folder_from_another_catalog_is_refused(renders: Path, tmp_path: Path) -> None:
    from generation.training import gan

    gan.train(renders, tmp_path / "gan", steps=1, batch=8, sample_every=0)
    folder = tmp_path / "gan/model"
    config = json.loads((folder / "gan.json").read_text())
    config["condition"]["items"].append("jetpack")
    (folder / "gan.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="different catalog"):
        gan.load_generator(folder)
    with pytest.raises(FileNotFoundError, match="chibify train gan"):
        gan.load_generator(tmp_path)


def test_classifier_run_scores_and_frechet_distance(renders: Path, tmp_path: Path) -> None:
    from generation.training import classifier

    summary = classifier.train(renders, tmp_path / "cls", steps=3, batch=8)
    assert set(summary["held_out"]) >= {"hair_color", "hair_style", "expression", "items_recall"}
    model = classifier.load_classifier(tmp_path / "cls/model")
    images, records = dataset.load_split(renders, "train")
    scores = classifier.score(model, images, [labels_of(r.spec) for r in records if r.spec])
    assert scores.total["hair_style"] == len(records) and scores.features.shape == (
        len(records),
        model.features,
    )
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8))
    assert classifier.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert classifier.frechet_distance(a, a + 1.0) == pytest.approx(8.0, rel=0.05)
