"""Command-line flags → one :class:`TrainConfig`. Shared by ``main.py`` and ``main_modern.py``.

Every flag defaults to None here, so that the config knows which settings the user gave: those
override a resumed run's saved settings and the recipe's defaults; the rest come from
:class:`TrainConfig`. A flag is its field's name with dashes (``--batch-size`` sets ``batch_size``), or names
the field it sets with ``dest`` (``--modern-training`` sets ``recipe``).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Any

from models.activations import describe_activation, list_activations
from utils.after.rerun import rerun_from
from utils.config import (AMP_DTYPES, AUGMENTATIONS, CROP_PAD_MODES, DATA_MODES, DATASETS, DEVICES, EXPORT_FORMATS,
                          OPTIMIZERS, SCHEDULERS, TTA_MODES, TrainConfig)
from utils.distributed import restarted_by_torchrun
from utils.errors import OneLineArgumentParser
from utils.experiment import resume_config
from utils.presets import PRESETS, preset_settings
from utils.resolve import resolve
from utils.smoke import SMOKE_ENV, smoke_settings
from utils.training.tensorboard_log import require_tensorboard

COMPILE_CHOICES = ("off", "default", "max-autotune", "graphs")  # --compile MODE (utils/training/compiled_step.py)

CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


class RealDefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default only when it has one: the config's flags default to None (so the config
    knows which flags were given), and their help text states the real default in words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def new_parser(prog: str, description: str) -> OneLineArgumentParser:
    return OneLineArgumentParser(prog=prog, description=description, formatter_class=RealDefaultsHelpFormatter)


def epoch_count(text: str) -> float:
    """``--epochs``: a whole number stays an int (``10``, not ``10.0``, in config.json and the logs)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number such as 10 or 9.9 (got '{text}')") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
    return int(value) if value.is_integer() else value


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags main.py and main_modern.py share (SPEC: 'Flags shared by main.py and main_modern.py')."""
    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", help="folder with train/ and test/ (or val/) class folders, or with CIFAR's "
                      "cifar-10-batches-py (default ./data)")
    data.add_argument("--dataset", choices=DATASETS, help="default: cifar10, or folder when --data-dir is an image folder")
    data.add_argument("--no-download", dest="download", action="store_const", const=False,
                      help="never download CIFAR; fail with a message instead")
    data.add_argument("--image-size", type=int, help="resize images to N×N (default 32)")
    data.add_argument("--subset", type=int, help="train on N training images (stratified, seeded)")
    data.add_argument("--test-subset", type=int, help="evaluate on M test images (stratified); default all")
    data.add_argument("--val-split", type=int, metavar="N",
                      help="hold out N training images (stratified, seeded) and choose best.pt and raw-vs-EMA on "
                      "them, so the test set is only reported")
    data.add_argument("--cache-dir", help="where decoded image folders are cached ('' disables; "
                      "default ~/.cache/cifar10-framework)")
    data.add_argument("--synthetic-size", type=int, help="training images of --dataset synthetic (default 512)")
    data.add_argument("--workers", type=int, help="data loader worker processes of --data-mode memory "
                      "(default: one per CPU core, at most 8)")
    data.add_argument("--data-mode", choices=DATA_MODES,
                      help="where the data lives: memory (a DataLoader over the decoded tensor, per-image "
                      "augmentation in workers), device (the whole tensor on the training device, batches "
                      "augmented there) or stream (an image folder's files decoded by the workers each epoch, for "
                      "folders larger than RAM); auto picks device unless a per-image policy needs memory, and "
                      "stream for a folder that would take over half the available RAM (default auto)")

    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=epoch_count, help="default 10; a fraction (9.9) ends the last epoch part-way")
    train.add_argument("--batch-size", type=int, help="default 128")
    train.add_argument("--lr", type=float, help="peak learning rate (default: 1e-3 Adam, 2e-3 AdamW, 0.1 SGD)")
    train.add_argument("--seed", type=int, help="seed of initialization, data order and augmentation (default 42)")
    train.add_argument("--activation", help="activation used throughout the model (see --list-activations)")
    train.add_argument("--list-activations", action="store_true", help="list the activations and exit")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help="default: adam (standard), adamw (modern)")
    train.add_argument("--scheduler", choices=SCHEDULERS, help="default: step (standard), cosine (modern); "
                       "linear: from 0.2 of --lr up to --lr at --warmup-epochs, then down to 0.07 of it; decay: from --lr down to 0")
    train.add_argument("--weight-decay", type=float, help="default: 0 Adam, 0.05 AdamW, 5e-4 SGD")
    train.add_argument("--momentum", type=float, help="SGD's (Nesterov) momentum (default 0.9)")
    train.add_argument("--muon-lr", type=float, help="--optimizer muon: the conv filters' learning rate; the rest "
                       "(biases, head) take Nesterov SGD at --lr (default 0.24)")
    train.add_argument("--muon-momentum", type=float, help="--optimizer muon: the conv filters' momentum (default 0.6)")
    train.add_argument("--step-size", type=int, help="step scheduler: epochs between decays (default: decay at 1/2 and 3/4 of the run, whatever its length)")
    train.add_argument("--gamma", type=float, help="step scheduler: decay factor (default 0.1)")

    add_run_arguments(parser.add_argument_group("run"))


def add_run_arguments(run: argparse._ArgumentGroup) -> None:
    """The "run" group: where it runs and writes, resume or rerun, evaluation, what it logs."""
    run.add_argument("--device", choices=DEVICES, help="auto picks CUDA when present (default auto)")
    run.add_argument("--output-dir", help="where the run writes its files (default runs/<model>-<timestamp>)")
    run.add_argument("--resume", action="store_const", const=True,
                     help="continue the run in --output-dir from its last.pt")
    run.add_argument("--no-progress", dest="progress", action="store_const", const=False, help="no progress bars")
    run.add_argument("--eval-every", type=int, metavar="N",
                     help="evaluate every N epochs (the last always); default: as rarely as keeps evaluation "
                     "near 15%% of the run")
    run.add_argument("--eval-batch-size", type=int, help="evaluation batch (default twice --batch-size)")
    run.add_argument("--tta", choices=TTA_MODES, help="test-time augmentation of every evaluation: average the "
                     "logits over flipped (and 2-pixel translated) views (default none)")
    run.add_argument("--probe-images", type=int, metavar="N",
                     help="after every epoch, the accuracy of the weights on a fixed stratified sample of N test "
                     "images (one plain view, not counted in the run's times): accuracy against training time")
    run.add_argument("--quick", action="store_const", const=True,
                     help="2 epochs on 2,000 training and 1,000 test images: a first look in about a minute")
    run.add_argument("--config", metavar="CONFIG_JSON", help="start a new run with the settings of a recorded run's "
                     "config.json, resolved for this machine as a fresh run; flags given on top win (a new run "
                     "folder unless --output-dir)")
    run.add_argument("--tensorboard", action=argparse.BooleanOptionalAction,
                     help="write TensorBoard event files into RUN_DIR/tensorboard/ while training (per-step loss and "
                     "learning rate, per-epoch metrics; view with tensorboard --logdir runs); needs pip install -r "
                     "requirements-extras.txt")


def add_modern_arguments(parser: argparse.ArgumentParser) -> None:
    """main_modern.py's own flags: model choice, the modern recipe, augmentation, regularization."""
    add_model_arguments(parser.add_argument_group("model"))
    add_recipe_arguments(parser.add_argument_group("modern recipe (each part can be set alone)"))
    add_augmentation_arguments(parser.add_argument_group("augmentation"))
    regular = parser.add_argument_group("regularization")
    regular.add_argument("--drop-path", type=float, help="stochastic depth rate of the last block (linear over depth)")
    regular.add_argument("--dropblock", type=float, help="DropBlock drop probability (ramped up from 0 over training)")
    regular.add_argument("--dropblock-size", type=int, help="DropBlock square side (default 3)")


def add_model_arguments(model: argparse._ArgumentGroup) -> None:
    from models import list_models  # imported here: the registry builds models (torch)

    model.add_argument("--model", help=f"registry name: {', '.join(list_models())} (default cnn)")
    model.add_argument("--preset", choices=sorted(PRESETS), help="a named config under the flags given: speed = "
                       "speednet with the CIFAR-10 speed records' recipe (see utils/presets.py)")
    model.add_argument("--list-models", action="store_true", help="print the model table and exit")
    model.add_argument("--compare-models", nargs="*", metavar="NAME",
                       help="train each model with the same settings (no names: every registry model, one after the other)")
    model.add_argument("--evaluate", metavar="CHECKPOINT", help="test accuracy of a saved model, no training")
    model.add_argument("--misclassified", metavar="PNG", help="with --evaluate: also write a grid of misclassified "
                       "test images, each with its predicted and true class")
    model.add_argument("--predict", nargs="+", metavar=("CHECKPOINT", "IMAGE"),
                       help="classify image files or folders (any size; decoded, resized and normalized as the run's "
                       "images were) with a saved model: a top-k table, and a CSV for a folder; --tta and --device apply")
    model.add_argument("--export", metavar="CHECKPOINT", help="write a saved model as ONNX and torch.export .pt2 files "
                       "(uint8 RGB in, logits out, normalization inside), each checked against PyTorch on test images")
    model.add_argument("--export-format", nargs="+", choices=EXPORT_FORMATS, help="with --export: the formats "
                       "(default both; onnx needs requirements-extras.txt)")
    model.add_argument("--export-dir", metavar="DIR", help="with --export: where the files go (default: beside the checkpoint)")
    model.add_argument("--explain", nargs=2, metavar=("CHECKPOINT", "PNG"), help="draw what a saved model looks at "
                       "on test images of its data: Grad-CAM (convolutional models) or attention rollout (transformers)")
    model.add_argument("--explain-count", type=int, metavar="N", help="with --explain: test images drawn (default 16)")
    model.add_argument("--top-k", type=int, metavar="K", help="with --predict: classes shown per image (default 3)")
    model.add_argument("--save-predictions", metavar="FILE", help="with --predict: write the predictions to FILE "
                       "(.csv or .json; default for a folder: predictions.csv beside the checkpoint)")
    model.add_argument("--plot-schedule", metavar="PNG", help="draw the learning rate per step of the schedule "
                       "this run would use (every flag counts) beside the standard and modern defaults, and exit")



def add_recipe_arguments(recipe: argparse._ArgumentGroup) -> None:
    recipe.add_argument("--modern-training", dest="recipe", action="store_const", const="modern",
                        help="AdamW, warm-up + cosine, mixed precision (bf16 on CUDA and on CPUs with native bf16), "
                        "EMA, clipping 1.0, label smoothing 0.1")
    recipe.add_argument("--warmup-epochs", type=float, help="linear warm-up length (default a tenth of the run, max 5)")
    recipe.add_argument("--label-smoothing", type=float, help="default 0.1 (modern), 0 (standard)")
    recipe.add_argument("--ema", action=argparse.BooleanOptionalAction, help="EMA of the weights (default on with "
                        "--modern-training)")
    recipe.add_argument("--ema-decay", type=float, help="default 0.999, warmed up from 0.1")
    recipe.add_argument("--lookahead", action=argparse.BooleanOptionalAction,
                        help="Lookahead: every 5 steps the slow weights move toward the fast ones (by a share that "
                        "grows over the run) and the fast ones restart from them; the run ends on the slow weights")
    recipe.add_argument("--norm-bias-lr-scale", type=float, metavar="S", help="biases of normalization layers in "
                        "their own group at S times --lr, weight decay divided by S (default 1: no own group)")
    recipe.add_argument("--whitening-bias-epochs", type=int, metavar="N", help="a model with a whitening layer "
                        "(speednet): train its bias for N epochs, then freeze it (default: never frozen)")
    recipe.add_argument("--clip-grad", type=float, help="clip the gradient norm (default 1.0 with --modern-training)")
    recipe.add_argument("--amp", action=argparse.BooleanOptionalAction,
                        help="mixed precision (default on for --modern-training on CUDA and on CPUs with native bf16; "
                        "--no-amp: fp32)")
    recipe.add_argument("--amp-dtype", choices=AMP_DTYPES, help="auto: bf16 where supported, else fp16")
    recipe.add_argument("--compile", nargs="?", const="default", choices=COMPILE_CHOICES, metavar="MODE",
                        help="compile the training step whole with torch.compile (the model alone where the step "
                        "cannot be: Muon, fp16, torchrun, bf16 on a CPU); MODE: off, default (the bare flag), max-autotune, or "
                        "graphs (replayed as CUDA graphs, torch's reduce-overhead)")
    recipe.add_argument("--compile-mode", choices=COMPILE_CHOICES[1:] + ("reduce-overhead",),
                        help="as --compile MODE")
    recipe.add_argument("--sync-bn", action="store_const", const=True,
                        help="under torchrun on GPUs: BatchNorm statistics over the global batch (SyncBatchNorm)")
    recipe.add_argument("--no-tf32", dest="tf32", action="store_const", const=False,
                        help="full fp32 matmuls and convolutions on CUDA (default: TF32 on)")
    recipe.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        help="NHWC memory format (default on for CUDA, and on a CPU "
                        "when it runs bf16)")



def add_augmentation_arguments(augment: argparse._ArgumentGroup) -> None:
    augment.add_argument("--augmentation", choices=AUGMENTATIONS, help="per-image policy (default standard: crop + flip)")
    augment.add_argument("--crop-padding", type=int, metavar="PX", help="the random crop moves the image up to "
                         "PX pixels (default 4 at 32 px, scaled with --image-size)")
    augment.add_argument("--crop-pad-mode", choices=CROP_PAD_MODES, help="the random crop's border: zeros "
                         "(default) or the image reflected")
    augment.add_argument("--alternating-flip", action=argparse.BooleanOptionalAction,
                         help="mirror each image in every other epoch instead of at random (device data path; "
                         "default off, on in --preset speed)")
    augment.add_argument("--low-res-epochs", type=int, metavar="N", help="progressive resizing: the first N epochs "
                         "train on images shrunk to --low-res-size pixels, the rest at full size (default 0: off)")
    augment.add_argument("--low-res-size", type=int, metavar="PX", help="the side of the shrunk images (default 3/4 of "
                         "--image-size: 24 at 32)")
    augment.add_argument("--randaugment-n", type=int, help="RandAugment: ops per image (default 2)")
    augment.add_argument("--randaugment-m", type=int, help="RandAugment: magnitude 0-30 (default 9)")
    augment.add_argument("--cutout", type=int, nargs="?", const=0, metavar="SIZE",
                         help="Cutout square side (flag alone: 16 px at 32 px, scaled with the image)")
    augment.add_argument("--random-erasing", type=float, nargs="?", const=0.25, metavar="P",
                         help="Random Erasing probability (flag alone: 0.25)")
    augment.add_argument("--mixup", type=float, nargs="?", const=0.8, metavar="ALPHA", help="MixUp (flag alone: 0.8)")
    augment.add_argument("--cutmix", type=float, nargs="?", const=1.0, metavar="ALPHA", help="CutMix (flag alone: 1.0)")
    augment.add_argument("--mix-prob", type=float, help="probability that a batch is mixed (default 1)")
    augment.add_argument("--switch-prob", type=float, help="with both on: probability of CutMix (default 0.5)")
    augment.add_argument("--preview-augmentation", metavar="PNG",
                         help="write a grid of training images under this augmentation and exit")


def explicit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the user set on the command line."""
    settings = {k: v for k, v in vars(args).items() if k in CONFIG_FIELDS and v is not None}
    if isinstance(settings.get("compile"), str):  # --compile MODE: the config holds on/off and the mode
        mode = settings.pop("compile")
        settings["compile"] = mode != "off"
        if mode != "off":
            settings.setdefault("compile_mode", mode)
    return settings


def config_from_args(args: argparse.Namespace, **fixed: Any) -> TrainConfig:
    """The resolved config: flags (and ``fixed`` settings) over the saved run when resuming, over a recorded run's
    settings with ``--config`` (``utils/after/rerun.py``), else over the defaults."""
    rerun, rerun_given = rerun_from(args.config, args.resume, fixed) if getattr(args, "config", None) else ({}, [])
    given = {**rerun, **explicit_settings(args), **fixed}
    explicit = smoke_settings(given)  # CIFAR_SMOKE=1: synthetic data, one epoch
    forced = {key: f"smoke mode ({SMOKE_ENV}=1)" for key, value in explicit.items() if given.get(key) != value}
    if restarted_by_torchrun() and explicit.get("output_dir") and (Path(explicit["output_dir"]) / "last.pt").exists():
        explicit["resume"] = True  # torchrun --max-restarts started this worker again: continue from last.pt
    if explicit.get("resume"):
        config = resume_config(explicit, forced)
    else:
        # A preset's values sit under the flags given: an explicit flag always wins.
        preset = preset_settings(explicit["preset"]) if explicit.get("preset") else {}
        config = TrainConfig(**{**preset, **explicit}, user_settings=sorted({*rerun_given, *explicit_settings(args)}),
                             preset_settings=sorted(set(preset) - set(explicit) - {"preset"}),
                             rerun_of=getattr(args, "config", None))
    if config.tensorboard:
        require_tensorboard()  # the optional package: one line now, not a traceback once the run has started
    return resolve(config)


def print_activations() -> None:
    for name in list_activations():
        print(f"{name:<12} {describe_activation(name)}")
