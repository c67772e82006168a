"""Image folders as users have them: hidden files, odd formats and bit depths, stale caches."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from utils.config import TrainConfig
from utils.data.decode import decode_image_file, to_uint8
from utils.data.image_folder import image_folder_layout, image_folder_splits, list_image_folder
from utils.data_loader import build_data
from utils.errors import UserError
from utils.files import files_fingerprint
from utils.resolve import resolve

from tests.conftest import write_image_folder

RAMP16 = np.linspace(0, 65535, 16 * 16).reshape(16, 16).astype(np.uint16)  # every 16-bit level, dark to light


def expected_from_16bit(values: np.ndarray) -> torch.Tensor:
    """The 8-bit reading of 16-bit values: scaled by 255/65535, rounded (what Pillow's 8-bit conversions mean)."""
    return torch.from_numpy(np.round(values.astype(np.float64) * 255 / 65535).astype(np.uint8))


def write_png_rgb16(path: Path, pixels: np.ndarray) -> None:
    """A 48-bit RGB PNG, written by hand (Pillow cannot write one): pixels uint16 (H, W, 3)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)  # bit depth 16, colour type 2 (RGB)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


# ------------------------------------------------------------------------------------ discovery
def test_hidden_files_and_folders_are_ignored_everywhere(tmp_path):
    root = write_image_folder(tmp_path / "data")
    for split in ("train", "test"):
        checkpoints = root / split / ".ipynb_checkpoints"  # Jupyter makes these, with copies of images
        checkpoints.mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(checkpoints / "0000-checkpoint.png")
        (root / split / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (root / split / "cat" / "._0000.jpg").write_bytes(b"\0\5\26\7 AppleDouble")  # macOS resource fork
        (root / split / "cat" / ".cache").mkdir()
    listing = list_image_folder(root)
    assert listing.classes == ["cat", "dog", "ship"]
    assert len(listing.train) == 12 and len(listing.test) == 6
    assert not any(part.startswith(".") for path, _ in listing.train + listing.test for part in path.parts[-2:])
    train, test, classes = image_folder_splits(root, 16, None, False)
    assert classes == ["cat", "dog", "ship"] and len(train) == 12 and len(test) == 6


def test_a_test_split_may_lack_a_class(tmp_path):
    root = write_image_folder(tmp_path / "data")
    for image in (root / "test" / "dog").iterdir():
        image.unlink()
    listing = list_image_folder(root)
    assert listing.classes == ["cat", "dog", "ship"]
    assert sorted({label for _, label in listing.test}) == [0, 2]  # labels still follow train/'s classes


def test_an_unreadable_folder_is_one_error_naming_it(tmp_path, monkeypatch):
    # As root, chmod cannot make a folder unreadable: simulate the PermissionError the OS would raise.
    root = write_image_folder(tmp_path / "data")
    denied = root / "train" / "dog"
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(UserError, match=r"cannot read the folder .*train/dog \(Permission denied\)"):
        list_image_folder(root)


def test_a_file_that_vanishes_before_the_cache_key_is_one_error(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "data")
    files = list_image_folder(root).train
    files[0][0].unlink()
    with pytest.raises(UserError, match=files[0][0].name):
        files_fingerprint(f"{root / 'train'}|16", files)


def test_the_train_split_itself_names_the_folder_to_pass(tmp_path):
    root = write_image_folder(tmp_path / "data")
    with pytest.raises(UserError, match=f"--data-dir {root.resolve()}$"):
        image_folder_layout(root / "train")


# ------------------------------------------------------------------------------------ decoding
def test_16_bit_greyscale_png_and_tiff_are_scaled_not_truncated(tmp_path):
    expected = expected_from_16bit(RAMP16)
    for suffix in ("png", "tif"):
        path = tmp_path / f"grey16.{suffix}"
        Image.fromarray(RAMP16).save(path)
        decoded = decode_image_file(path)
        assert decoded.dtype == torch.uint8 and decoded.shape == (3, 16, 16), suffix
        for channel in decoded:
            assert torch.equal(channel, expected), suffix


def test_48_bit_rgb_png_is_scaled_per_channel(tmp_path):
    pixels = np.stack([RAMP16, RAMP16[::-1], np.full_like(RAMP16, 40000)], axis=-1)
    path = tmp_path / "rgb16.png"
    write_png_rgb16(path, pixels)
    decoded = decode_image_file(path)
    assert decoded.dtype == torch.uint8
    for c in range(3):
        assert (decoded[c].int() - expected_from_16bit(pixels[..., c]).int()).abs().max() <= 1


def test_float_tiff_in_unit_range_is_multiplied_by_255(tmp_path):
    values = np.linspace(0, 1, 16 * 16).reshape(16, 16).astype(np.float32)
    Image.fromarray(values).save(tmp_path / "float.tif")
    decoded = decode_image_file(tmp_path / "float.tif")
    assert torch.equal(decoded[0], torch.from_numpy(np.round(values.astype(np.float64) * 255).astype(np.uint8)))
    assert decoded[0].min() == 0 and decoded[0].max() == 255  # not all white, not all black


def test_float_tiff_outside_unit_range_is_stretched(tmp_path):
    values = np.linspace(-500, 3000, 16 * 16).reshape(16, 16).astype(np.float32)
    Image.fromarray(values).save(tmp_path / "float.tif")
    decoded = decode_image_file(tmp_path / "float.tif")[0]
    assert decoded.min() == 0 and decoded.max() == 255
    assert torch.all(decoded.flatten()[1:].int() >= decoded.flatten()[:-1].int())  # order kept


def test_32_bit_integer_tiff_holding_16_bit_values_is_scaled(tmp_path):
    Image.fromarray(RAMP16.astype(np.int32)).save(tmp_path / "int32.tif")
    assert torch.equal(decode_image_file(tmp_path / "int32.tif")[0], expected_from_16bit(RAMP16))


def test_to_uint8_keeps_8_bit_values_in_a_wide_integer_type():
    values = torch.arange(256, dtype=torch.int32).reshape(16, 16)
    assert torch.equal(to_uint8(values), values.to(torch.uint8))


@pytest.mark.parametrize("suffix", ["gif", "webp"])
def test_an_animated_image_gives_its_first_frame(tmp_path, suffix):
    frames = [Image.fromarray(np.full((12, 10, 3), value, np.uint8)) for value in (30, 200, 120)]
    path = tmp_path / f"animated.{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    decoded = decode_image_file(path)
    assert decoded.shape == (3, 12, 10)
    assert (decoded.float().mean() - 30).abs() < 3


@pytest.mark.parametrize("mode", ["P", "LA", "CMYK", "L", "RGBA", "1"])
def test_8_bit_modes_match_pillows_rgb_conversion(tmp_path, mode):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8))
    image = rgb.convert(mode)
    path = tmp_path / f"image-{mode}.{'jpg' if mode == 'CMYK' else 'tif' if mode == '1' else 'png'}"
    image.save(path)
    with Image.open(path) as reopened:
        expected = torch.from_numpy(np.array(reopened.convert("RGB"))).permute(2, 0, 1)
    decoded = decode_image_file(path)
    tolerance = 40 if mode == "CMYK" else 0  # libjpeg and Pillow convert CMYK JPEGs slightly differently
    assert (decoded.int() - expected.int()).abs().max() <= tolerance


# ------------------------------------------------------------------------------------ cache
def test_a_cache_with_the_wrong_shape_is_rebuilt(tmp_path):
    root = write_image_folder(tmp_path / "data")
    cache = tmp_path / "cache"
    first, _, _ = image_folder_splits(root, 16, cache, False)
    train_cache = next(cache.glob("data-train-16px-*.pt"))
    torch.save({"images": torch.zeros(5, 3, 16, 16, dtype=torch.uint8), "labels": torch.zeros(5, dtype=torch.int64)},
               train_cache)  # what a half-written or foreign file could hold under the right name
    again, _, _ = image_folder_splits(root, 16, cache, False)
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    assert torch.load(train_cache, weights_only=True)["images"].shape == first.images.shape  # rewritten


# ------------------------------------------------------------------------------------ subsets and loaders
def test_quick_on_a_small_folder_uses_what_there_is_and_says_so(tmp_path, capsys):
    root = write_image_folder(tmp_path / "data")
    config = resolve(TrainConfig(data_dir=str(root), quick=True, workers=0, cache_dir="", progress=False))
    data = build_data(config)
    assert data.train_loader.num_images == 12 and data.test_loader.num_images == 6
    out = capsys.readouterr().out
    assert "only 12 images for its --subset of 2000; using all of them" in out


def test_the_evaluation_batch_follows_batch_size(tmp_path):
    config = resolve(TrainConfig(dataset="synthetic", synthetic_size=64, batch_size=3, workers=0, progress=False))
    from utils.data.order import even_batch

    data = build_data(config)
    images = data.test_loader.num_images
    # twice --batch-size (no gradients are kept), or the divisor of the test set just below it
    assert data.test_loader.batch_size == even_batch(images, 6) and 3 <= data.test_loader.batch_size <= 6
    assert build_data(config.replace(eval_batch_size=3)).test_loader.batch_size == even_batch(images, 3)
    assert build_data(config.replace(eval_batch_size=images)).test_loader.batch_size == images


@pytest.mark.parametrize("path_taken", ["torchvision", "pillow"])
def test_a_photo_stored_sideways_is_read_upright_as_a_viewer_shows_it(tmp_path, monkeypatch, path_taken):
    """EXIF orientation 6 (rotate 90° clockwise to view): 8 wide × 4 high as stored, 4 wide × 8 high as shown."""
    from PIL import Image, ImageOps

    from utils.data import decode

    stored = np.zeros((4, 8, 3), np.uint8)
    stored[:, :4] = (250, 0, 0)  # the left half red, the right half blue, as stored
    stored[:, 4:] = (0, 0, 250)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "photo.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=100)
    if path_taken == "pillow":
        def refuse(*args, **kwargs):
            raise RuntimeError("not this decoder")
        monkeypatch.setattr(decode, "decode_image", refuse)
    image = decode.decode_image_file(path)
    with Image.open(path) as opened:
        viewed = torch.from_numpy(np.array(ImageOps.exif_transpose(opened).convert("RGB"))).permute(2, 0, 1)
    assert image.shape == (3, 8, 4) == viewed.shape
    assert (image.int() - viewed.int()).abs().max() <= 2  # the same pixels (JPEG decoders round alike, nearly)
    assert image[0, 0].float().mean() > 200 and image[2, -1].float().mean() > 200  # red on top, blue below
