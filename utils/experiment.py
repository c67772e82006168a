"""What the entry scripts call: one function per job, each taking a resolved :class:`TrainConfig`.

- :func:`run_training`: data → model (:func:`build_model`) → ``fit`` → confusion matrix → one-line summary;
- :func:`resume_config`: the config of the run in ``--output-dir`` with the flags given now on top (``--resume``);
- :func:`evaluate_checkpoint`: test accuracy and loss of a saved model;
- :func:`plot_schedules` and :func:`preview_augmentation`: pictures of a config before any training.

``--compare-models`` runs :func:`run_training` once per model (``utils/comparison.py``).

``benchmark_all.py`` and the tests call these same functions; nothing here parses flags.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from models import count_parameters, create_model
from utils import distributed
from utils.augmentation import build_batch_mixer
from utils.config import RESUME_MUST_MATCH, RESUME_NEEDS_OUTPUT_DIR, TrainConfig
from utils.data_loader import DataBundle, build_data
from utils.devices import keep_freed_memory, select_device, tune_cuda
from utils.distributed import Placement, share_from_main
from utils.errors import RunStopped, UserError
from utils.evaluation import evaluate_saved, load_saved
from utils.modern_trainer import Precision, learning_rates
from utils.resolve import resolve, resolve_for_device
from utils.seeds import generator, seed_everything
from utils.trainer import Trainer, train
from utils.training.checkpoint import check_class_names, load_checkpoint
from utils.training.run_dir import claim_run_dir
from utils.visualization import (confusion_matrix, picture_path, plot_confusion_matrix, plot_lr_schedules,
                                 plot_misclassified, save_image_grid)


def resume_config(explicit: dict[str, Any], forced_by: dict[str, str] | None = None) -> TrainConfig:
    """The config of the run in ``--output-dir``, with the flags given now applied on top.

    Flags that would change what the checkpoint's tensors mean (model, activation...) must match.
    ``forced_by``: settings the user did not give but a mode imposed (smoke mode's image size), and
    the mode's name, so that a refusal blames the mode and not the user.
    """
    forced_by = forced_by or {}
    if explicit.get("output_dir") is None:
        raise UserError(RESUME_NEEDS_OUTPUT_DIR)
    run_dir = Path(explicit["output_dir"])
    last = run_dir / "last.pt"
    if not last.exists():
        raise UserError(f"nothing to resume in {run_dir}: no last.pt there (start the run without --resume)")
    saved = TrainConfig.from_dict(load_checkpoint(last)["config"])
    for key in RESUME_MUST_MATCH:
        if key in explicit and explicit[key] != getattr(saved, key):
            asked = (f"{forced_by[key]} sets {key}={explicit[key]}" if key in forced_by
                     else f"this run asks for {key}={explicit[key]}")
            raise UserError(f"cannot resume {last}: it was trained with {key}={getattr(saved, key)}, {asked}")
    return saved.replace(**explicit, user_settings=sorted(set(saved.user_settings) | set(explicit) - {"resume"}))


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    return create_model(config.model, num_classes=num_classes, image_size=config.image_size,
                        activation=config.activation, drop_path_rate=config.drop_path,
                        dropblock_prob=config.dropblock, dropblock_size=config.dropblock_size)


AfterTraining = Callable[[nn.Module, DataBundle, torch.device, Path], None]
WHITENING_SAMPLE = 5000  # training images a data-fitted first layer is fitted on (patch statistics settle well before)


def run_training(config: TrainConfig, after: Optional[AfterTraining] = None) -> dict[str, Any]:
    """Train one model as ``config`` (resolved) says; return its metrics (also in ``metrics.json``).

    Under ``torchrun`` every process calls this; they train data-parallel (``utils/distributed.py``).
    ``after(model, data, device, run_dir)`` is called at the end with the run's own model and data
    (a study measures the final model with it, without building the data again).
    """
    device = select_device(config.device)
    placement = distributed.setup(device)
    device = distributed.device_for(placement, device)
    if device.type == "cuda":
        tune_cuda(config.tf32)
    elif device.type == "cpu":
        keep_freed_memory()
    config, device_note = resolve_for_device(config, device)
    if config.sync_bn and device.type != "cuda":
        raise UserError("--sync-bn needs CUDA (PyTorch's SyncBatchNorm runs on GPUs only); drop it on a CPU")
    try:
        with claimed_run_dir(config, placement) as run_dir:
            return _train(config.replace(output_dir=str(run_dir)), device, run_dir, device_note, placement, after)
    except ValueError as error:
        if "Expected more than 1 value per channel" not in str(error):
            raise
        # BatchNorm normalizes each channel over the batch and the map: one image on a 1x1 map has nothing to
        # normalize over (a batch of one, or a last batch of one, at a small --image-size)
        raise UserError(f"{config.model} reaches a 1x1 feature map before BatchNorm with a single image in a batch "
                        f"(--batch-size {config.batch_size}, --image-size {config.image_size}): use a --batch-size of "
                        f"at least 2, or a larger --image-size") from None
    except RuntimeError as error:
        if not (placement.distributed and distributed.is_peer_failure(error)):
            raise
        # A collective failed: another process of this torchrun run died (or its machine is unreachable).
        raise RunStopped(f"rank {placement.rank}: another process of this torchrun run was lost "
                         f"({str(error).splitlines()[0][:120]}); start it again with --resume "
                         f"--output-dir {config.output_dir or 'RUN'} (torchrun --max-restarts does so itself)", 1) from None


@contextlib.contextmanager
def claimed_run_dir(config: TrainConfig, placement: Placement) -> Iterator[Path]:
    """The run folder, claimed (checked and locked) by rank 0 alone and shared with the other processes."""
    if not placement.distributed:
        with claim_run_dir(config.output_dir, config.model, config.resume) as run_dir:
            yield run_dir
        return
    with contextlib.ExitStack() as stack:
        shared: Any = None
        if placement.is_main:
            try:
                shared = str(stack.enter_context(claim_run_dir(config.output_dir, config.model, config.resume)))
            except UserError as error:  # every process ends with the same one line
                shared = error
        yield Path(share_from_main(shared))


def _train(config: TrainConfig, device: torch.device, run_dir: Path, device_note: str = "",
           placement: Placement = Placement(), after: Optional[AfterTraining] = None) -> dict[str, Any]:
    seed_everything(config.seed)
    data = build_data(config, device, placement.rank, placement.world_size)
    config = config.replace(data_mode=data.data_mode)  # config.json records the data mode the run used
    model = build_model(config, data.num_classes).to(device)
    if config.sync_bn and placement.distributed:  # BatchNorm statistics over the global batch
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if hasattr(model, "init_from_data"):
        # A layer fitted to the data (speednet's whitening), before the EMA copies the model; a resumed
        # run then loads the saved weights over it.
        model.init_from_data(data.normalized_train_sample(WHITENING_SAMPLE, device, config.seed))
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    trainer = Trainer(model, data, config, run_dir, device, placement)
    if config.resume:
        # Checked before anything is written: a refused resume leaves the folder as it was.
        resumed = trainer.restore(run_dir / "last.pt")
    if placement.is_main:
        config.save(run_dir / "config.json")
    print(start_line(config, data, trainer, placement, device, run_dir), flush=True)
    if config.resume:
        print(resumed + (f"; {device_note}" if device_note else ""), flush=True)
    metrics = train(trainer)
    # The model the run keeps (best.pt: raw or EMA weights) goes back into ``model``, and its confusion matrix is
    # drawn from the evaluation that chose it (its --tta views); only a resume that kept the old best evaluates again.
    best = load_checkpoint(run_dir / "best.pt") if placement.is_main else None
    result = trainer.best_test_result
    if result is None:
        result = evaluate_saved(best, model, data.test_loader, device, precision=trainer.recipe.precision,
                                channels_last=config.channels_last, tta=config.tta)
    else:
        load_saved(best, model)
    if placement.is_main:
        plot_confusion_matrix(confusion_matrix(result["predictions"], result["labels"], data.num_classes),
                              data.class_names, run_dir / "confusion_matrix.png",
                              title=f"{config.model}, best.pt ({best['weights_source']} weights): {result['acc']:.2f}%")
    if after is not None:
        after(model, data, device, run_dir)
    print(summary_line(metrics, run_dir), flush=True)
    return metrics


def start_line(config: TrainConfig, data: DataBundle, trainer: Trainer, placement: Placement, device: torch.device,
               run_dir: Path) -> str:
    """The run's first line: model, data, recipe, device, folder."""
    processes = (f" | {placement.world_size} processes x batch {config.batch_size} = global batch "
                 f"{placement.world_size * config.batch_size}" if placement.distributed else "")
    return (f"{config.model}: {count_parameters(trainer.model) / 1e6:.2f}M parameters | {data.dataset} "
            f"{data.train_loader.num_images} train / {trainer.test_image_count} test images ({data.data_mode}) | "
            f"{config.recipe} recipe ({config.optimizer}, {config.scheduler}) | {device}"
            f"{' | AMP ' + config.amp_dtype if config.amp else ''}{processes}"
            f"{' | compiled: ' + trainer.compiled if trainer.compiled else ''} | {run_dir}")


def summary_line(metrics: dict[str, Any], run_dir: Path) -> str:
    """The run's last line: the final test accuracy first; the best epoch is optimistic unless chosen on validation."""
    chosen = ""
    if "best_val_epoch" in metrics:
        chosen = (f" | best.pt chosen on {metrics['val_images']} validation images: epoch {metrics['best_val_epoch']}, "
                  f"test acc {metrics['test_acc_at_best_val']:.2f}%")
    return (f"done: {metrics['model']} | final test acc {metrics['final_test_acc']:.2f}% "
            f"| best on test (optimistic) {metrics['best_test_acc']:.2f}% (epoch {metrics['best_epoch']}){chosen} "
            f"| {metrics['params'] / 1e6:.2f}M params | {metrics['total_time_s']:.0f}s on {metrics['device']} | {run_dir}")


# Flags that --evaluate takes from the command line; everything else comes from the checkpoint.
EVALUATION_SETTINGS = ("data_dir", "dataset", "download", "test_subset", "workers", "device", "progress", "batch_size",
                    "cache_dir", "eval_batch_size", "tta")
ARCHITECTURE_SETTINGS = ("model", "activation", "image_size", "drop_path", "dropblock")


def evaluate_checkpoint(path: str, explicit: dict[str, Any], misclassified: Optional[str] = None,
                        count: int = 32) -> dict[str, Any]:
    """Test accuracy and loss of the model saved in ``path``, on the data the flags name (else the run's).

    ``misclassified``: also write a grid of (up to ``count``) misclassified test images to that path,
    each titled with its predicted and true class.
    """
    if misclassified:
        picture_path(misclassified)  # a path that cannot take a picture is refused before any work
    checkpoint = load_checkpoint(Path(path))
    saved = TrainConfig.from_dict(checkpoint["config"])
    for key in ARCHITECTURE_SETTINGS:
        if key in explicit and explicit[key] != getattr(saved, key):
            flag = "--" + key.replace("_", "-")
            print(f"note: {flag} {explicit[key]} ignored: {path} holds {key} {getattr(saved, key)}, "
                  f"and that is what is evaluated", flush=True)
    changes = {k: v for k, v in explicit.items() if k in EVALUATION_SETTINGS}
    if "data_dir" in changes and "dataset" not in changes:
        changes["dataset"] = None  # another folder: detect what it holds
    # Validated like a training run's flags (--test-subset 0, --workers -1... are refused the same way).
    config = resolve(saved.replace(**changes, subset=None, quick=False, resume=False))
    device = select_device(config.device)
    # The precision the model trained and was evaluated in (bf16 autocast where the run had it), re-resolved
    # when this device is of another kind than the run's.
    config, _ = resolve_for_device(config.replace(resume=True), device)
    data = build_data(config, device)
    check_class_names(checkpoint, data.class_names, Path(path))
    model = build_model(config, data.num_classes).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    started = time.perf_counter()
    result = evaluate_saved(checkpoint, model, data.test_loader, device, f"{path} (model {config.model})",
                            precision=Precision.from_config(config, device), channels_last=config.channels_last,
                            tta=config.tta)
    seconds = time.perf_counter() - started
    if misclassified:
        wrong = (result["predictions"] != result["labels"]).nonzero().flatten()
        # a seeded sample, in test-set order: the first mistakes of a class-sorted folder would all be one class
        pick = torch.randperm(len(wrong), generator=generator(config.seed))[:count]
        wrong = wrong[pick.sort().values]
        plot_misclassified(data.test_images[wrong], result["predictions"][wrong].tolist(),
                           result["labels"][wrong].tolist(), data.class_names, Path(misclassified),
                           title=f"{config.model}: {len(wrong)} of the misclassified test images, predicted / true")
        print(f"misclassified test images written to {misclassified}")
    print(f"{config.model} from {path} ({checkpoint.get('weights_source', 'raw')} weights, epoch {checkpoint['epoch']}"
          f"{', ' + config.amp_dtype + ' autocast' if config.amp else ''}): "
          f"test acc {result['acc']:.2f}% | test loss {result['loss']:.4f} | {data.test_loader.num_images} images "
          f"in {seconds:.1f}s"
          + (f" | TTA {config.tta}" if config.tta != "none" else ""))
    return result


SCHEDULE_SETTINGS = ("recipe", "scheduler", "lr", "optimizer", "warmup_epochs", "step_size", "gamma", "epochs")


def plot_schedules(config: TrainConfig, path: Path, steps_per_epoch: int = 390) -> Path:
    """A PNG of the learning rate per step of the run ``config`` describes, beside the two recipes' defaults.

    Drawn from ``modern_trainer.build_scheduler`` itself: the run's curve is the schedule the run would
    use (every flag given counts); the standard recipe's step decay and the modern warm-up + cosine
    are drawn beside it, with their default peak learning rates, for ``config``'s epochs (390 steps
    an epoch: CIFAR-10's 50,000 images at batch 128).
    """
    path = picture_path(path)
    given = [k for k in SCHEDULE_SETTINGS if k in config.user_settings or k in config.preset_settings]
    curves = {f"this run ({config.scheduler}, peak lr {config.lr:g})": learning_rates(config, steps_per_epoch)}
    for recipe, name in (("standard", "step decay (standard: Adam)"), ("modern", "warm-up + cosine (modern: AdamW)")):
        settings = {**config.to_dict(), "recipe": recipe, "scheduler": None, "lr": None, "optimizer": None,
                    "warmup_epochs": None, "step_size": None, "gamma": TrainConfig.gamma}
        resolved = resolve(TrainConfig.from_dict(settings))
        if learning_rates(resolved, steps_per_epoch) != curves[next(iter(curves))]:
            curves[f"default {name}"] = learning_rates(resolved, steps_per_epoch)
    plot_lr_schedules(curves, steps_per_epoch, path, title=f"learning rate over {config.epochs} epochs"
                      + (f" ({', '.join('--' + k.replace('_', '-') for k in given)} as given)" if given else ""))
    print(f"learning-rate schedules written to {path}")
    return path


def preview_augmentation(config: TrainConfig, path: Path, count: int = 8) -> Path:
    """A PNG: the same training images plain, then under the configured augmentation (and mixing)."""
    path = picture_path(path)  # a path that cannot take a picture is refused before any data is read
    seed_everything(config.seed)
    # The per-image path shows single images; the device path applies the same crop, flip and Cutout to batches.
    data = build_data(config.replace(workers=0, subset=None, batch_size=count, data_mode="memory"))
    dataset = data.train_loader.dataset
    indices = range(0, len(dataset), max(1, len(dataset) // count))[:count]
    plain = data.test_loader.dataset.transform
    rows = [("original", torch.stack([plain(dataset.split.images[i]) for i in indices]))]
    for attempt in range(2):
        rows.append((f"{config.augmentation} augmentation" + (f" + cutout {config.cutout}" if config.cutout else "")
                     + (f" + erasing {config.random_erasing}" if config.random_erasing else "") + f" (draw {attempt + 1})",
                     torch.stack([dataset[i][0] for i in indices])))
    mixer = build_batch_mixer(config, data.num_classes)
    if mixer is not None:
        images = rows[-1][1]
        labels = torch.stack([dataset.split.labels[i] for i in indices])
        mixed, targets = mixer(images, labels)
        weights = targets.max(1).values
        kind = "mixup/cutmix" if config.mixup and config.cutmix else "mixup" if config.mixup else "cutmix"
        rows.append((f"{kind} on the batch (dominant label weight {weights.mean():.2f})", mixed))
    save_image_grid(rows, path, data.mean, data.std, columns=count)
    print(f"augmentation preview written to {path}")
    return path
