
import pytest
import torch

from utils.config import TrainConfig
from utils.data.image_folder import image_folder_splits
from utils.data.order import channel_stats, stratified_subset
from utils.data.sources import resolve_dataset, synthetic_splits
from utils.data.torch_loader import EpochBatchSampler
from utils.data_loader import build_data
from utils.errors import UserError
from utils.resolve import resolve

from tests.conftest import write_image_folder


def test_synthetic_data_is_seeded_uint8_and_balanced():
    train, test, classes = synthetic_splits(100, 16, 10, seed=3)
    again, _, _ = synthetic_splits(100, 16, 10, seed=3)
    other, _, _ = synthetic_splits(100, 16, 10, seed=4)
    assert train.images.shape == (100, 3, 16, 16) and train.images.dtype == torch.uint8
    assert torch.equal(train.images, again.images) and not torch.equal(train.images, other.images)
    assert torch.bincount(train.labels, minlength=10).tolist() == [10] * 10
    assert len(classes) == 10 and len(test) >= 10


def test_image_folder_resizes_any_size_and_converts_greyscale(tmp_path):
    root = write_image_folder(tmp_path / "data", per_class=4)
    train, test, classes = image_folder_splits(root, image_size=24, cache_dir=None, progress=False)
    assert classes == ["cat", "dog", "ship"]
    assert train.images.shape == (12, 3, 24, 24) and train.images.dtype == torch.uint8
    assert train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert len(test) == 6
    # class 2 was written brighter than class 0: the decoded pixels must keep that order
    assert train.images[train.labels == 2].float().mean() > train.images[train.labels == 0].float().mean() + 50


def test_image_folder_accepts_val_instead_of_test(tmp_path):
    root = write_image_folder(tmp_path / "data", test_name="val")
    assert resolve_dataset(TrainConfig(data_dir=str(root))) == "folder"
    _, test, _ = image_folder_splits(root, 32, None, False)
    assert len(test) == 6


def test_decoded_folder_is_cached_and_reused(tmp_path):
    import os

    root = write_image_folder(tmp_path / "data")
    cache = tmp_path / "cache"
    first, _, _ = image_folder_splits(root, 32, cache, False)
    assert len(list(cache.glob("*.pt"))) == 2  # train and test
    # Garble a JPEG but keep its size and mtime: a cache hit never decodes it, so reading still works.
    jpeg = next(root.glob("train/cat/*.jpg"))
    stat = jpeg.stat()
    jpeg.write_bytes(b"\0" * stat.st_size)
    os.utime(jpeg, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second, _, _ = image_folder_splits(root, 32, cache, False)
    assert torch.equal(first.images, second.images)
    # A new mtime changes the key: the folder is decoded again, and the garbled file is reported.
    os.utime(jpeg, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(UserError, match=str(jpeg.name)):
        image_folder_splits(root, 32, cache, False)


def test_stratified_subset_keeps_class_proportions_and_is_seeded():
    labels = torch.tensor([0] * 600 + [1] * 300 + [2] * 100)
    chosen = stratified_subset(labels, 100, seed=0)
    assert len(chosen) == 100 and len(set(chosen.tolist())) == 100
    assert torch.bincount(labels[chosen]).tolist() == [60, 30, 10]
    assert torch.equal(chosen, stratified_subset(labels, 100, seed=0))
    assert not torch.equal(chosen, stratified_subset(labels, 100, seed=1))


def test_stratified_subset_sums_to_the_request_with_remainders():
    labels = torch.tensor([0] * 7 + [1] * 7 + [2] * 7)
    assert len(stratified_subset(labels, 10, seed=0)) == 10


def test_subset_larger_than_the_data_is_an_error():
    with pytest.raises(UserError, match="larger than the training set"):
        stratified_subset(torch.zeros(10, dtype=torch.long), 11, seed=0)


def test_channel_stats_of_constant_images():
    images = torch.full((4, 3, 8, 8), 51, dtype=torch.uint8)
    mean, std = channel_stats(images)
    assert mean == (0.2, 0.2, 0.2)
    assert all(s > 0 for s in std)  # clamped, so normalization never divides by zero


def test_epoch_order_is_a_function_of_seed_and_epoch_and_resumes_mid_epoch():
    sampler = EpochBatchSampler(100, 10, seed=5)
    sampler.set_epoch(1)
    full = list(sampler)
    sampler.set_epoch(1, start_batch=4)
    assert list(sampler) == full[4:]
    sampler.set_epoch(2)
    assert list(sampler) != full
    assert sorted(i for batch in full for i in batch) == list(range(100))


def test_build_data_on_a_folder_gives_normalized_batches(tmp_path):
    root = write_image_folder(tmp_path / "data", per_class=6)
    config = resolve(TrainConfig(data_dir=str(root), batch_size=4, workers=0, cache_dir="", progress=False))
    data = build_data(config)
    data.set_epoch(0)
    images, labels = next(iter(data.train_loader))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert data.class_names == ["cat", "dog", "ship"] and data.dataset == "folder"
    assert labels.dtype == torch.int64


def test_build_data_subset_and_test_subset(tmp_path):
    config = resolve(TrainConfig(dataset="synthetic", synthetic_size=200, subset=50, test_subset=20, image_size=16,
                                 workers=0))
    data = build_data(config)
    assert data.train_loader.num_images == 50 and data.test_loader.num_images == 20


def test_augmented_batches_with_workers_are_a_function_of_seed_and_epoch():
    config = resolve(TrainConfig(dataset="synthetic", synthetic_size=64, image_size=16, batch_size=16, workers=2,
                                 augmentation="randaugment", seed=1))
    first, second = build_data(config), build_data(config)
    batches = []
    for data in (first, second):
        data.set_epoch(3)
        batches.append(next(iter(data.train_loader))[0])
    torch.testing.assert_close(batches[0], batches[1])
    first.set_epoch(4)
    assert not torch.equal(next(iter(first.train_loader))[0], batches[0])


def test_the_evaluation_batch_divides_the_split_when_a_divisor_is_near():
    from utils.data.order import even_batch

    assert even_batch(10_000, 256) == 250  # 40 batches of one shape, not 39 of 256 and one of 16
    assert even_batch(500, 256) == 250 and even_batch(100, 256) == 100
    assert even_batch(997, 256) == 256  # a prime: no divisor near, the batch asked
    assert even_batch(10_000, 1) == 1
    for images, batch in ((10_000, 256), (7_919, 512), (1_000, 64)):
        size = even_batch(images, batch)
        assert batch // 2 <= size <= batch and (images % size == 0 or size == batch)
