"""The catalogue of studies: each study's experiments (arms), the pairs its report compares, and the plan.

- :data:`STUDIES`: the studies ``benchmark_all.py`` runs; for each, its arms (:data:`TECHNIQUES`,
  :data:`REGULARIZERS`, :data:`RECORD_RECIPE`, :data:`PRESET_TECHNIQUES`, every model or activation) and
  the pairs its report compares (``*_PAIRS``: row, baseline arm, treatment arm, and which weights each
  is judged by, raw or EMA);
- :class:`Experiment`: one arm, a few settings over the base config (and the preset it starts from);
- :class:`BenchmarkPlan`: the experiments, seeds, base config and folder of one command;
- :func:`experiment_config`: the config of one (experiment, seed) run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from models import list_models, model_family
from models.activations import list_activations
from utils.config import TrainConfig
from utils.errors import UserError
from utils.presets import preset_settings
from utils.resolve import resolve

STUDIES = ("architectures", "techniques", "activations", "regularization", "record", "preset_techniques")
FULL_STUDIES = ("architectures", "techniques", "activations")  # --full: the original README's three

RAW, EMA = "final_test_acc", "final_ema_test_acc"
# The original README's ablation table: (row, baseline experiment, treatment experiment, the baseline's
# figure, the treatment's). Every row compares the raw weights' final test accuracy, except EMA's: there
# the averaged weights are what the technique delivers (the raw weights of an EMA run train exactly as
# without it).
TECHNIQUE_PAIRS = [
    ("standard -> modern recipe", "standard", "modern", RAW, RAW),
    ("Adam -> AdamW", "standard", "adamw", RAW, RAW),
    ("step LR -> warm-up + cosine", "standard", "cosine", RAW, RAW),
    ("AMP off -> on", "standard", "amp", RAW, RAW),
    ("EMA off -> on (EMA weights)", "standard", "ema", RAW, EMA),
    ("label smoothing 0 -> 0.1", "standard", "label_smoothing", RAW, RAW),
    ("standard augmentation -> RandAugment", "standard", "randaugment", RAW, RAW),
    ("no MixUp -> MixUp", "standard", "mixup", RAW, RAW),
    ("everything combined vs standard", "standard", "combined", RAW, RAW),
]
# Each technique experiment: the settings it changes over the standard recipe. Adam and AdamW share
# the learning rate, so that the pair differs in the optimizer (and its decoupled decay) only.
TECHNIQUES = {
    "standard": {},
    "modern": {"recipe": "modern"},
    "adamw": {"optimizer": "adamw", "lr": 1e-3},
    "cosine": {"scheduler": "cosine"},
    "amp": {"amp": True},
    "ema": {"ema": True},
    "label_smoothing": {"label_smoothing": 0.1},
    "randaugment": {"augmentation": "randaugment"},
    "mixup": {"mixup": 0.8},
    "combined": {"recipe": "modern", "augmentation": "randaugment", "mixup": 0.8},
}
# Level 4's augmentations and appendix A's regularizers, each alone over the base recipe (RandAugment and
# MixUp are in the techniques study). DropBlock and stochastic depth live in residual blocks, which only
# the resnet and efficientnet families have both of; on another model those arms would train the baseline.
REGULARIZERS = {
    "baseline": {},
    "cutout": {"cutout": 0},  # 0: the default side, 16 px at 32 px
    "random_erasing": {"random_erasing": 0.25},
    "cutmix": {"cutmix": 1.0},
    "dropblock": {"dropblock": 0.1},
    "drop_path": {"drop_path": 0.1},
}
REGULARIZATION_FAMILIES = ("resnet", "efficientnet")
REGULARIZATION_PAIRS = [
    ("no Cutout -> Cutout (default side)", "baseline", "cutout", RAW, RAW),
    ("no random erasing -> random erasing (p 0.25)", "baseline", "random_erasing", RAW, RAW),
    ("no CutMix -> CutMix (alpha 1)", "baseline", "cutmix", RAW, RAW),
    ("no DropBlock -> DropBlock (0.1)", "baseline", "dropblock", RAW, RAW),
    ("no stochastic depth -> stochastic depth (0.1)", "baseline", "drop_path", RAW, RAW),
]
ACTIVATION_BASELINE = "relu"  # the activations study compares each activation with the default one, seed by seed
# The arm every comparison of a study is made against (architectures: the first model named, see study_pairs).
REFERENCE_ARM = {"techniques": "standard", "regularization": "baseline", "activations": ACTIVATION_BASELINE,
                 "record": "preset", "preset_techniques": "baseline"}
# The record recipe's ingredients (``--preset speed-sgd``, airbench94, utils/presets.py), each taken out in turn: the
# preset against the preset without one of them (the earlier preset's choice in its place).
RECORD_RECIPE = {
    "preset": {},
    "bias_lr_1x": {"norm_bias_lr_scale": 1.0},
    "bias_never_frozen": {"whitening_bias_epochs": None},
    "warmup_cosine": {"scheduler": "cosine", "warmup_epochs": 2.0},
    "ema_not_lookahead": {"lookahead": False, "ema": True, "ema_decay": 0.99},
    "zero_padding": {"crop_pad_mode": "zeros"},
}
RECORD_PAIRS = [
    ("BatchNorm biases at 1x -> 64x the lr", "bias_lr_1x", "preset", RAW, RAW),
    ("whitening bias always trained -> frozen after 3 epochs", "bias_never_frozen", "preset", RAW, RAW),
    ("warm-up + cosine -> piecewise linear", "warmup_cosine", "preset", RAW, RAW),
    ("EMA (its weights) -> Lookahead", "ema_not_lookahead", "preset", EMA, RAW),
    ("zero -> reflect padding of the crop", "zero_padding", "preset", RAW, RAW),
]


# Levels 3 and 4's techniques at a budget where a CPU trains all of CIFAR-10: the speed preset's network and
# recipe (without its own label smoothing) is the baseline, and each technique is added to it alone, with the
# values of the techniques study, so that only the network, the data and the budget differ from that study's
# table. --epochs sets the budget (the preset's 8 unless given); evaluation runs at the end (and probes every
# epoch). RandAugment is a per-image policy: its arm reads the data through the DataLoader path, whose flip is
# random rather than alternating.
PRESET_TECHNIQUES = {
    "baseline": {},
    "label_smoothing": {"label_smoothing": 0.1},
    "ema": {"ema": True},
    "cutout": {"cutout": 0},  # 0: the default side, 16 px at 32 px
    "mixup": {"mixup": 0.8},
    "randaugment": {"augmentation": "randaugment", "data_mode": "memory", "alternating_flip": False},
}
PRESET_TECHNIQUE_PAIRS = [
    ("label smoothing 0 -> 0.1", "baseline", "label_smoothing", RAW, RAW),
    ("EMA off -> on (EMA weights)", "baseline", "ema", RAW, EMA),
    ("no Cutout -> Cutout (16 px)", "baseline", "cutout", RAW, RAW),
    ("no MixUp -> MixUp (alpha 0.8)", "baseline", "mixup", RAW, RAW),
    ("standard augmentation -> RandAugment", "baseline", "randaugment", RAW, RAW),
]


def preset_technique_base() -> dict[str, Any]:
    """The speed preset's settings less its budget and its label smoothing (an arm of the study)."""
    settings = preset_settings("speed")
    for budget_setting in ("epochs", "eval_every"):
        del settings[budget_setting]
    return {**settings, "label_smoothing": 0.0}


@dataclass
class Experiment:
    study: str
    name: str
    changes: dict[str, Any]  # the arm's settings: they win over everything else
    # The recipe the arm starts from (a preset's settings): the flags given for every run (--batch-size,
    # --device, ...) win over it, so that the study runs where and as the user asked.
    recipe: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.study}/{self.name}"

    @property
    def settings(self) -> dict[str, Any]:
        """Everything the arm sets over the base config (recipe and changes)."""
        return {**self.recipe, **self.changes}


@dataclass
class BenchmarkPlan:
    base: TrainConfig  # the settings every experiment shares (unresolved: recipes fill in the rest)
    experiments: list[Experiment]
    seeds: list[int]
    out_dir: Path
    command: str = ""
    verbose: bool = False
    progress: bool = True
    results: list[dict[str, Any]] = field(default_factory=list)
    is_main: bool = True  # under torchrun: is this rank 0, the process that writes the files
    only: Optional[list[str]] = None  # --only: the experiments asked (their baselines come along)
    given: dict[str, Any] = field(default_factory=dict)  # the settings passed for every run (win over a recipe)


def build_experiments(studies: Sequence[str], models: Optional[Sequence[str]], model: str,
                      precision_pinned: bool = False) -> list[Experiment]:
    """The experiments of each study asked, in a stable order.

    ``precision_pinned`` (``--amp``/``--no-amp`` given for every run): the techniques study leaves out its
    AMP arm, which would either repeat the baseline or contradict the flag (on a CPU without native bf16,
    autocast to bf16 is emulated and many times slower).
    """
    twice = sorted({name for name in models or () if list(models).count(name) > 1})
    if twice:
        raise UserError(f"--models names {', '.join(twice)} more than once; name each model once")
    experiments = []
    for study in studies:
        if study == "architectures":
            experiments += [Experiment(study, name, {"model": name}) for name in (models or list_models())]
        elif study == "techniques":
            experiments += [Experiment(study, name, {"model": model, **changes}) for name, changes in TECHNIQUES.items()
                            if not (precision_pinned and "amp" in changes)]
        elif study == "record":
            experiments += [Experiment(study, name, changes, recipe=preset_settings("speed-sgd"))
                            for name, changes in RECORD_RECIPE.items()]
        elif study == "preset_techniques":
            experiments += [Experiment(study, name, changes, recipe=preset_technique_base())
                            for name, changes in PRESET_TECHNIQUES.items()]
        elif study == "regularization":
            if model_family(model) not in REGULARIZATION_FAMILIES:
                raise UserError(f"--regularization needs a model with residual blocks (DropBlock and stochastic "
                                f"depth live there): a resnet or efficientnet model, not {model} "
                                f"(--model resnet_tiny is the small one)")
            experiments += [Experiment(study, name, {"model": model, **changes})
                            for name, changes in REGULARIZERS.items()]
        elif study == "activations":
            experiments += [Experiment(study, name, {"model": model, "activation": name})
                            for name in list_activations(distinct=True)]  # swish once, not again as silu
        else:
            raise UserError(f"unknown study '{study}': choose from {', '.join(STUDIES)}")
    return experiments


def keep_only(experiments: list[Experiment], only: Sequence[str]) -> list[Experiment]:
    """The experiments named in ``only`` (``--only``), with the reference arm of their study.

    A longer budget is often affordable for a few arms only (the regularizers of the techniques study,
    say); an arm without the one it is compared against would leave its row of the table empty, so the
    study's reference (:data:`REFERENCE_ARM`) comes along unasked.
    """
    known = {e.name for e in experiments}
    for name in only:
        if name in TECHNIQUES and name not in known and any(e.study == "techniques" for e in experiments):
            raise UserError(f"--only {name}: that arm is left out when --amp/--no-amp pins every run's precision")
        if name not in known:
            raise UserError(f"--only: no experiment named {name} in the studies asked; choose from "
                            f"{', '.join(sorted(known))}")
    wanted = set(only) | {REFERENCE_ARM[e.study] for e in experiments if e.name in only and e.study in REFERENCE_ARM}
    return [e for e in experiments if e.name in wanted]


def experiment_config(plan: BenchmarkPlan, experiment: Experiment, seed: int) -> TrainConfig:
    run_dir = plan.out_dir / experiment.study / experiment.name / f"seed-{seed}"
    settings = {**experiment.recipe, **plan.given, **experiment.changes}
    return resolve(plan.base.replace(**settings, seed=seed, output_dir=str(run_dir)))


def differing_settings(baseline: TrainConfig, treatment: TrainConfig) -> str:
    """The resolved settings in which two configs differ, as flags (``--optimizer adamw --weight-decay 0.05``)."""
    ignore = TrainConfig.result_free_fields() | {"seed"}
    parts = [f"--{k.replace('_', '-')} {v}" for k, v in treatment.to_dict().items()
             if k not in ignore and v != getattr(baseline, k)]
    return " ".join(parts) or "(none)"
