import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from fgood_bench.tools.images import (
    DeviceBatch, Geometry, ImageDataset, UnreadableImage, color_jitter, jitter_factors, load_image,
)
from fgood_bench.tools.loop import EpochSampler


def photo(width: int, height: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(width * height)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) % 256)], -1) + rng.integers(0, 20, (height, width, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).convert(mode)


def save(image: Image.Image, path, fmt: str = "JPEG") -> None:
    image.save(path, format=fmt, quality=95)


def reference(path, geometry: Geometry, crop=None) -> np.ndarray:
    """The MixOE test transform, up to ToTensor, as uint8-scale floats (H, W, 3)."""
    image = Image.open(path).convert("RGB").resize((geometry.resize, geometry.resize), Image.Resampling.BILINEAR)
    if crop is None:
        image = transforms.CenterCrop(geometry.crop)(image)
    else:
        left, top = crop
        image = image.crop((left, top, left + geometry.crop, top + geometry.crop))
    return np.asarray(image, np.float64)


@pytest.mark.parametrize("size", [(500, 375), (375, 500), (256, 256), (1100, 1030), (1100, 1200)])
def test_matches_the_reference_transform(tmp_path, size):
    """Every image, large JPEGs included (Stanford Cars, Aircraft), is decoded at full scale by default:
    the input is torchvision's PIL Resize((512, 512)) + CenterCrop(448) within one level of rounding."""
    geometry = Geometry()
    save(photo(*size), tmp_path / "a.jpg")
    ours = load_image(tmp_path / "a.jpg", geometry).permute(1, 2, 0).numpy().astype(np.float64)
    assert ours.shape == (448, 448, 3)
    difference = np.abs(ours - reference(tmp_path / "a.jpg", geometry))
    assert difference.mean() < 0.5 and difference.max() <= 1.0


def test_reduced_decoding_is_an_explicit_inexact_option(tmp_path):
    """reduced_decode decodes a JPEG of at least twice the resize at reduced scale: faster, and its
    pixels move by more than rounding, which is why it is never the default."""
    geometry = Geometry()
    save(photo(1100, 1200), tmp_path / "big.jpg")
    exact = load_image(tmp_path / "big.jpg", geometry).numpy().astype(np.float64)
    fast = load_image(tmp_path / "big.jpg", geometry, reduced_decode=True).numpy().astype(np.float64)
    assert np.abs(fast - exact).max() > 2
    dataset = ImageDataset(tmp_path, ["big.jpg"], [0], geometry)
    assert torch.equal(dataset[0][0], torch.from_numpy(exact.astype(np.uint8)))
    fast_dataset = ImageDataset(tmp_path, ["big.jpg"], [0], geometry, reduced_decode=True)
    assert torch.equal(fast_dataset[0][0], torch.from_numpy(fast.astype(np.uint8)))


def test_random_crop_offset_and_flip_follow_the_resized_frame(tmp_path):
    geometry = Geometry.for_crop(64)
    assert geometry == Geometry(crop=64, resize=73)
    save(photo(120, 90), tmp_path / "a.png", "PNG")
    ours = load_image(tmp_path / "a.png", geometry, offset=(9, 2), flip=True).permute(1, 2, 0).numpy()
    expected = reference(tmp_path / "a.png", geometry, crop=(9, 2))[:, ::-1]
    assert np.abs(ours - expected).max() <= 1


def test_grayscale_cmyk_and_png_named_jpeg(tmp_path):
    geometry = Geometry.for_crop(32)
    save(photo(50, 40, "L"), tmp_path / "gray.jpg")
    save(photo(50, 40, "CMYK"), tmp_path / "cmyk.jpg")
    save(photo(50, 40), tmp_path / "png.JPEG", "PNG")  # ImageNet has a PNG with a .JPEG name
    for name in ("gray.jpg", "cmyk.jpg", "png.JPEG"):
        image = load_image(tmp_path / name, geometry)
        assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
        expected = reference(tmp_path / name, geometry)
        assert np.abs(image.permute(1, 2, 0).numpy() - expected).mean() < 2, name


def test_unreadable_images_name_the_file(tmp_path):
    save(photo(50, 40), tmp_path / "ok.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "ok.jpg").read_bytes()[:60])
    (tmp_path / "html.jpg").write_bytes(b"<html>404</html>")
    for name in ("cut.jpg", "html.jpg", "absent.jpg"):
        with pytest.raises(UnreadableImage, match=rf"{name}: unreadable image"):
            load_image(tmp_path / name, Geometry.for_crop(32))


def test_seeded_items_do_not_depend_on_workers(tmp_path):
    for k in range(6):
        save(photo(60 + k, 50), tmp_path / f"{k}.jpg")
    dataset = ImageDataset(tmp_path, [f"{k}.jpg" for k in range(6)], list(range(6)), Geometry.for_crop(32), train=True)
    sampler = EpochSampler(6, rank=0, world=1, seed=3)
    sampler.set_epoch(2)
    keys = list(sampler)
    first = [dataset[key][0] for key in keys]
    again = [dataset[key][0] for key in keys]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    sampler.set_epoch(3)
    assert [k[1] for k in sampler] != [k[1] for k in keys]


def test_device_batch_normalises_and_jitters_within_range():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    batch = DeviceBatch(torch.device("cpu"))
    x = batch(images)
    expected = (images.float() / 255 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(x, expected, atol=1e-6)
    factors = jitter_factors(0, 1, [5, 6, 7, 8])
    assert torch.equal(factors, jitter_factors(0, 1, [5, 6, 7, 8])) and not torch.equal(factors, jitter_factors(0, 2, [5, 6, 7, 8]))
    assert ((factors[:, 0] - 1).abs() <= 32 / 255).all() and ((factors[:, 1] - 1).abs() <= 0.5).all()
    jittered = color_jitter(images.float() / 255, factors)
    assert jittered.min() >= 0 and jittered.max() <= 1 and not torch.allclose(jittered, images.float() / 255)
    gray_kept = color_jitter(torch.full((1, 3, 2, 2), 0.5), torch.tensor([[1.0, 0.0]]))
    assert torch.allclose(gray_kept, torch.full((1, 3, 2, 2), 0.5))


@pytest.mark.parametrize("size", [(300, 200), (200, 300), (256, 256)])
def test_shorter_side_mode_matches_imagenet_resize_then_crop(tmp_path, size):
    """Appendix H.2: the shorter side to 256 (aspect ratio kept), then a 224 crop: torchvision's
    Resize(256) + CenterCrop(224), and random crops inside that frame."""
    geometry = Geometry.for_crop(224, "shorter")
    assert (geometry.resize, geometry.crop) == (256, 224)
    save(photo(*size), tmp_path / "a.png", "PNG")
    image = Image.open(tmp_path / "a.png").convert("RGB")
    resized = transforms.Resize(256)(image)
    assert geometry.resized_size(image.height, image.width) == (resized.height, resized.width)
    expected = np.asarray(transforms.CenterCrop(224)(resized), np.float64)
    ours = load_image(tmp_path / "a.png", geometry).permute(1, 2, 0).numpy().astype(np.float64)
    assert ours.shape == (224, 224, 3) and np.abs(ours - expected).max() <= 1
    free_w, free_h = resized.width - 224, resized.height - 224
    corner = load_image(tmp_path / "a.png", geometry, position=(0.999, 0.999)).permute(1, 2, 0).numpy().astype(np.float64)
    far = np.asarray(resized.crop((free_w, free_h, free_w + 224, free_h + 224)), np.float64)
    assert np.abs(corner - far).max() <= 1
    dataset = ImageDataset(tmp_path, ["a.png"], [0], geometry, train=True)
    crops = {tuple(dataset[(0, seed)][0][:, 0, 0].tolist()) for seed in range(8)}
    assert len(crops) > 1 and torch.equal(dataset[(0, 3)][0], dataset[(0, 3)][0])


def test_square_mode_is_the_paper_default_and_bad_modes_are_refused():
    from fgood_bench.errors import FgoodError
    from fgood_bench.tools.loop import TrainConfig

    assert TrainConfig().geometry == Geometry(448, 512, "square")
    assert TrainConfig(image_size=224, resize_mode="shorter").geometry == Geometry(224, 256, "shorter")
    with pytest.raises(FgoodError, match="resize mode 'shortest'"):
        Geometry(224, 256, "shortest")


def test_fast_decode_is_asked_for_and_recorded(monkeypatch):
    """build-splits --fast-decode reaches the training and ranking predictions (TrainConfig.reduced_decode),
    and the manifest's record names it; exact decoding leaves the record as it always was."""
    import fgood_bench.ranking.build as build
    from fgood_bench.cli import main
    from fgood_bench.tools.loop import TrainConfig

    asked = []
    monkeypatch.setattr(build, "build_splits", lambda request: asked.append(request.train) or None)
    assert main(["build-splits", "bird", "--root", "r", "--out", "o", "--fast-decode"]) == 0
    assert main(["build-splits", "bird", "--root", "r", "--out", "o"]) == 0
    assert [config.reduced_decode for config in asked] == [True, False]
    assert TrainConfig(reduced_decode=True).record()["reduced_decode"] is True
    assert "reduced_decode" not in TrainConfig().record()


def test_cosine_schedule_ends_at_the_reference_final_learning_rate():
    """The reference's cosine_annealing(step, total, 1, 1e-6 / lr): the last step's learning rate is 1e-6, not 0."""
    from fgood_bench.tools.loop import cosine_factor

    factor = cosine_factor(100, 1e-6 / 1e-3)
    assert factor(0) == 1.0 and abs(1e-3 * factor(100) - 1e-6) < 1e-15 and abs(factor(50) - (0.5 + 0.5e-3)) < 1e-12
