"""Comparisons a careful researcher would trust (learning level 7): studies × seeds through ``run_training``.

A *study* is a list of experiments, each a few settings over a common base config:

- ``architectures``: every model asked, the same recipe and budget, each against the first one named;
- ``techniques``: the original README's ablation table, each technique against its baseline on the same
  model, data and budget (the pairs in :data:`TECHNIQUE_PAIRS`);
- ``activations``: every activation of the registry on one model;
- ``regularization``: level 4's augmentations and appendix A's in-network regularizers, each alone
  against the same model without it (the pairs in :data:`REGULARIZATION_PAIRS`).

Every (experiment, seed) is one ordinary training run (``utils.experiment.run_training``, what
``main_modern.py`` calls) in its own folder, so it checkpoints and resumes like any run. The
benchmark records, per run: the last epoch's test accuracy (the headline) and the best epoch's
(secondary, optimistic: chosen on the test set), raw and EMA; parameters; forward GFLOPs per image;
training time and throughput; peak memory; the expected calibration error of the final model.
``results.json`` is rewritten after every run, and a re-run of the same command skips what is
finished, resumes what was interrupted, and retries what failed.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from models import list_models, model_family
from models.activations import list_activations
from utils.checkpoint import load_checkpoint
from utils.config import TrainConfig
from utils import distributed
from utils.devices import select_device
from utils.evaluation import evaluate_saved
from utils.files import atomic_write, write_json
from utils.model_cost import forward_gflops
from utils.errors import RunStopped, UserError
from utils.run_dir import RUN_FILES, RunLock
from utils.presets import preset_settings
from utils.statistics import expected_calibration_error

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
    return plan.base.replace(**settings, seed=seed, output_dir=str(run_dir)).resolved()


def differing_settings(baseline: TrainConfig, treatment: TrainConfig) -> str:
    """The resolved settings in which two configs differ, as flags (``--optimizer adamw --weight-decay 0.05``)."""
    ignore = {"output_dir", "seed", "user_settings", "preset_settings", "resolved_for", "resume"}
    parts = [f"--{k.replace('_', '-')} {v}" for k, v in treatment.to_dict().items()
             if k not in ignore and v != getattr(baseline, k)]
    return " ".join(parts) or "(none)"


# ------------------------------------------------------------------------------------ measuring one run
def peak_memory_mib(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "CUDA max_memory_allocated"
    # ru_maxrss: KiB on Linux, bytes on macOS; the whole process's peak so far (it never goes down)
    scale = 1 if platform.system() == "Darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20, "process peak RSS"


def final_model_extras(model: torch.nn.Module, data, device: torch.device, run_dir: Path, image_size: int
                       ) -> dict[str, Any]:
    """FLOPs, and the expected calibration error of the final (last-epoch, raw) weights on the test set.

    Called by the run itself (``run_training``'s ``after``), on its model and data: nothing is built twice.
    """
    result = evaluate_saved(load_checkpoint(run_dir / "last.pt"), model, data.test_loader, device, str(run_dir / "last.pt"))
    return {"gflops": round(forward_gflops(model, image_size), 4),
            "ece": round(expected_calibration_error(result["probabilities"], result["labels"]), 5),
            "calibration_probabilities": result["probabilities"], "calibration_labels": result["labels"]}


def run_one(plan: BenchmarkPlan, experiment: Experiment, seed: int,
            train: Callable[[TrainConfig], dict[str, Any]]) -> dict[str, Any]:
    """Train (or resume) one (experiment, seed) and return its record; a failure is recorded, not raised."""
    config = experiment_config(plan, experiment, seed)
    run_dir = Path(config.output_dir)
    record: dict[str, Any] = {"study": experiment.study, "experiment": experiment.name, "seed": seed,
                              "run_dir": str(run_dir)}
    resume = (run_dir / "last.pt").exists()
    if resume:
        config = config.replace(resume=True)
    else:  # stopped before its first checkpoint: the files it left (config.json) hold nothing to resume
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
    device = select_device(config.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    extras: dict[str, Any] = {}

    def measure_final(model: torch.nn.Module, data, run_device: torch.device, run_dir: Path) -> None:
        extras.update(final_model_extras(model, data, run_device, run_dir, config.image_size))

    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output) if not plan.verbose else contextlib.nullcontext():
            metrics = train(config, after=measure_final)
    except Exception as error:  # any failure of one run is recorded, and the study goes on to the next
        if isinstance(error, RunStopped) and error.exit_code in (130, 143):  # the user stopped the benchmark
            raise RunStopped(f"{experiment.key} seed {seed}: {error.what}", error.exit_code, error.quiet,
                             advice="run the same command again to continue the study (finished runs are "
                                    "skipped, this one resumes)") from None
        message = str(error) if isinstance(error, (UserError, RunStopped)) else f"{type(error).__name__}: {error}"
        return {**record, "status": "failed", "error": " ".join(message.split())[:300], "resumed": resume}
    history = metrics["history"]
    last = history[-1]
    memory, memory_kind = peak_memory_mib(device)
    seen = metrics["train_images"] * min(len(history), config.epochs)  # a fractional last epoch: its share
    calibration = {k: extras.pop(k) for k in ("calibration_probabilities", "calibration_labels")}
    if plan.is_main:
        atomic_write(run_dir / "calibration.pt", lambda temporary: torch.save(calibration, temporary))
    return {**record, "status": "done", "resumed": resume,
            "final_test_acc": last["test_acc"], "final_ema_test_acc": last.get("ema_test_acc"),
            "final_train_acc": last["train_acc"],  # on the last epoch's augmented batches: the gap shows memorizing
            "best_test_acc": metrics["best_test_acc"], "best_epoch": metrics["best_epoch"],
            "test_acc_curve": [h["test_acc"] for h in history],
            "params": metrics["params"], "train_time_s": metrics["train_time_s"],
            "wall_time_s": metrics["total_time_s"], "img_per_s": round(seen / max(metrics["train_time_s"], 1e-9), 1),
            "peak_memory_mib": round(memory, 1), "peak_memory_kind": memory_kind, **extras,
            "config": config.replace(resume=False).to_dict(), "device": metrics["device"],
            "torch": torch.__version__}


# ------------------------------------------------------------------------------------ the benchmark
def catch_user_error(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, or the UserError it raised (to be shared with the other torchrun processes)."""
    try:
        return function(*args)
    except UserError as error:
        return error


# Settings that change no result: a study may be continued with them changed (--tensorboard turned on midway).
SIGNATURE_IGNORES = {"output_dir", "progress", "resume", "user_settings", "preset_settings", "resolved_for", "workers",
                     "tensorboard", "rerun_of"}


def plan_signature(plan: BenchmarkPlan) -> dict[str, Any]:
    """What must match for a re-run to continue a benchmark in the same folder: the studies, the budget, and
    every other setting that changes a result (``--synthetic-size``, ``--data-mode``, ``--device``...)."""
    base = plan.base.to_dict()
    signature = {"experiments": [e.key for e in plan.experiments],
                 "budget": {k: base[k] for k in ("epochs", "subset", "test_subset", "batch_size", "image_size",
                                                 "dataset", "data_dir", "quick")},
                 "settings": {k: v for k, v in base.items() if k not in SIGNATURE_IGNORES},
                 "changes": {e.key: e.settings for e in plan.experiments}}
    return json.loads(json.dumps(signature))  # as it reads back from benchmark.json (tuples become lists)


def same_study(saved: dict[str, Any], signature: dict[str, Any]) -> bool:
    """Does a folder's saved signature match? (One saved before signatures covered every setting has only
    the studies and the budget, and is compared on those.)"""
    return all(saved.get(key) == signature[key] for key in signature if key in saved)


def check_same_study(plan: BenchmarkPlan) -> None:
    """The folder's benchmark.json, if any, records this command's studies and budget."""
    signature_file = plan.out_dir / "benchmark.json"
    if not signature_file.exists():
        return
    try:
        saved = json.loads(signature_file.read_text())
    except (OSError, ValueError):
        raise UserError(f"{signature_file} is unreadable; choose another --output-dir") from None
    if not isinstance(saved.get("signature"), dict) or not same_study(saved["signature"], plan_signature(plan)):
        raise UserError(f"{plan.out_dir} holds a benchmark of another command (other studies, --only arms or budget); "
                        f"re-run that command to continue it, or choose another --output-dir")


def check_output_dir(plan: BenchmarkPlan, lock: Optional[RunLock] = None) -> None:
    """Refuse a folder that holds a training run or a benchmark of another command, or that another
    benchmark is using (``lock``, held until the study ends); record this one's signature."""
    signature_file = plan.out_dir / "benchmark.json"
    signature = plan_signature(plan)
    held = [name for name in RUN_FILES if (plan.out_dir / name).exists()]
    if held:
        raise UserError(f"{plan.out_dir} holds a training run ({', '.join(held)}), not a benchmark; choose another "
                        f"--output-dir")
    if lock is not None and plan.out_dir.is_dir():
        lock.acquire()  # two benchmarks in one folder would mark each other's runs as failed
    if signature_file.exists():
        check_same_study(plan)
    else:
        try:
            plan.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot create --output-dir {plan.out_dir} ({error.strerror or error})") from None
        if lock is not None:
            lock.acquire()
        write_json(signature_file, {"command": plan.command, "signature": signature})


def load_results(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / "results.json"
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        raise UserError(f"{path} is unreadable; delete it to re-run every experiment") from None


def run_benchmark(plan: BenchmarkPlan, train: Optional[Callable[[TrainConfig], dict[str, Any]]] = None
                  ) -> list[dict[str, Any]]:
    """Run every (experiment, seed) not finished yet; keep ``results.json`` current after each."""
    from utils.experiment import run_training

    train = train or run_training
    # Under torchrun every process runs every experiment (each run data-parallel); rank 0 writes the files.
    plan.is_main = distributed.setup(select_device(plan.base.device)).is_main
    lock = RunLock(plan.out_dir) if plan.is_main else None
    try:
        distributed.share_from_main(catch_user_error(check_output_dir, plan, lock) if plan.is_main else None)
        return _run_each(plan, train)
    finally:
        if lock is not None:
            lock.release()


def _run_each(plan: BenchmarkPlan, train: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    from tqdm import tqdm

    results = {(r["study"], r["experiment"], r["seed"]): r for r in load_results(plan.out_dir)}
    # Seed by seed, every arm at each: a study stopped part-way holds every arm at the seeds it finished,
    # so each comparison is paired over those seeds (not some arms at five seeds and others at none).
    todo = [(e, s) for s in plan.seeds for e in plan.experiments]
    bar = tqdm(todo, desc="benchmark", disable=not plan.progress)
    for experiment, seed in bar:
        key = (experiment.study, experiment.name, seed)
        if results.get(key, {}).get("status") == "done":
            continue  # finished in an earlier invocation
        bar.set_postfix_str(f"{experiment.key} seed {seed}")
        started = time.perf_counter()
        record = run_one(plan, experiment, seed, train)
        record["benchmark_wall_s"] = round(time.perf_counter() - started, 2)
        results[key] = record
        if plan.is_main:
            write_json(plan.out_dir / "results.json", {"command": plan.command, "results": list(results.values())})
        if record["status"] == "failed":
            tqdm.write(f"{experiment.key} seed {seed} failed: {record['error']}")
    bar.close()
    order = {(e.study, e.name, s): i for i, (e, s) in enumerate((e, s) for e in plan.experiments for s in plan.seeds)}
    plan.results = sorted((r for k, r in results.items() if k in order), key=lambda r: order[
        (r["study"], r["experiment"], r["seed"])])
    return plan.results


def environment_line() -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else \
        f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    return f"{device}, torch {torch.__version__}; report written {time.strftime('%Y-%m-%d')}"


# ------------------------------------------------------------------------------------ the report
def summarize(results: Sequence[dict[str, Any]], experiments: Sequence[Experiment]) -> dict[str, dict[str, Any]]:
    """Per experiment: mean and std over its finished seeds of every measured figure."""
    from utils.statistics import mean_std

    summary = {}
    for experiment in experiments:
        runs = [r for r in results if (r["study"], r["experiment"]) == (experiment.study, experiment.name)]
        done = [r for r in runs if r["status"] == "done"]
        row: dict[str, Any] = {"study": experiment.study, "experiment": experiment.name, "seeds": len(done),
                               "failed": [r["error"] for r in runs if r["status"] == "failed"]}
        for key in ("final_test_acc", "best_test_acc", "final_ema_test_acc", "final_train_acc", "train_time_s",
                    "img_per_s", "ece", "peak_memory_mib"):
            values = [r[key] for r in done if r.get(key) is not None]
            mean, std = mean_std(values) if values else (None, None)
            row[key] = (mean, std if len(values) > 1 else None) if values else None  # one seed: no spread
            row[key + "_values"] = values
            row[key + "_by_seed"] = {r["seed"]: r[key] for r in done if r.get(key) is not None}  # for pairing
        row["params"] = done[0]["params"] if done else None
        row["gflops"] = done[0]["gflops"] if done else None
        curves = [r["test_acc_curve"] for r in done]
        row["curve"] = [mean_std([c[i] for c in curves if i < len(c) and c[i] is not None])
                        for i in range(max(map(len, curves), default=0))]
        summary[experiment.key] = row
    return summary


def _pm(value: Optional[tuple[float, Optional[float]]], digits: int = 2) -> str:
    """``mean ± std``, or the mean alone when one seed gave no spread."""
    if value is None:
        return "n/a"
    mean, std = value
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def study_pairs(plan: BenchmarkPlan, study: str) -> list[tuple[str, str, str, str, str]]:
    """(label, baseline, treatment, baseline figure, treatment figure) of each comparison a study reports."""
    if study == "techniques":
        return TECHNIQUE_PAIRS
    if study == "record":
        return RECORD_PAIRS
    if study == "regularization":
        return REGULARIZATION_PAIRS
    if study == "preset_techniques":
        return PRESET_TECHNIQUE_PAIRS
    names = [e.name for e in plan.experiments if e.study == study]
    if study == "activations":
        reference = ACTIVATION_BASELINE
    elif study == "architectures" and names:
        reference = names[0]  # the first model of --models: "how much does each beat the basic CNN?"
    else:
        return []
    return [(f"{reference} -> {name}", reference, name, RAW, RAW) for name in names if name != reference]


def pair_table(plan: BenchmarkPlan, summary: dict[str, dict[str, Any]], study: str) -> list[str]:
    """Each treatment against its baseline (techniques: the original README's table; record: the preset's
    ingredients; activations: each against ReLU; architectures: each model against the first one named)."""
    from utils.statistics import paired_interval, welch_interval

    pairs = study_pairs(plan, study)
    lines = ["| change | baseline final acc % | with it % | difference, paired [95% CI] | Welch [95% CI] "
             "| train time ratio | ECE baseline → with it | flags that differ |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    arms = {e.name: e for e in plan.experiments if e.study == study}
    halves: list[tuple[float, float]] = []  # (paired, Welch) half-widths: what pairing by seed bought
    for label, base_name, treat_name, base_figure, treat_figure in pairs:
        base, treat = summary.get(f"{study}/{base_name}"), summary.get(f"{study}/{treat_name}")
        if treat_name not in arms:  # left out of this plan: by --only, or the AMP arm under --amp/--no-amp
            why = ("--only" if plan.only is not None and treat_name not in plan.only else
                   "--amp/--no-amp pins every run's precision")
            lines.append(f"| {label} | n/a | n/a | left out: {why} | | | | |")
            continue
        if not base or not treat or not base[base_figure + "_values"] or not treat[treat_figure + "_values"]:
            lines.append(f"| {label} | n/a | n/a | not run | | | | |")
            continue
        difference, welch_low, welch_high = welch_interval(treat[treat_figure + "_values"], base[base_figure + "_values"])
        welch = f"[{welch_low:+.2f}, {welch_high:+.2f}]" if welch_low is not None else "(one seed: no interval)"
        mean, low, high, pairs_found = paired_interval(treat[treat_figure + "_by_seed"], base[base_figure + "_by_seed"])
        if low is not None and welch_low is not None:
            halves.append(((high - low) / 2, (welch_high - welch_low) / 2))
        paired = (f"{mean:+.2f} [{low:+.2f}, {high:+.2f}] ({pairs_found} seeds)" if low is not None else
                  f"{mean:+.2f} (one seed: no interval)" if mean is not None else "(no common seed)")
        ratio = (f"{treat['train_time_s'][0] / base['train_time_s'][0]:.2f}x"
                 if base["train_time_s"] and base["train_time_s"][0] > 0 else "n/a")
        ece = (f"{base['ece'][0]:.3f} → {treat['ece'][0]:.3f}" if base["ece"] and treat["ece"] else "n/a")
        flags = differing_settings(experiment_config(plan, arms[base_name], 0),
                                   experiment_config(plan, arms[treat_name], 0))
        lines.append(f"| {label} | {_pm(base[base_figure])} | {_pm(treat[treat_figure])} | {paired} | "
                     f"{difference:+.2f} {welch} | {ratio} | {ece} | `{flags}` |")
    if halves:
        paired_halves, welch_halves = [h[0] for h in halves], [h[1] for h in halves]
        lines += ["", f"Half-width of the 95% intervals ({len(halves)} of the comparisons above have both): "
                  f"paired by seed ±{statistics.median(paired_halves):.2f} points (median; widest ±{max(paired_halves):.2f}), "
                  f"Welch's ±{statistics.median(welch_halves):.2f} (median; widest ±{max(welch_halves):.2f})."]
    return lines


def pair_section(plan: BenchmarkPlan, summary: dict[str, dict[str, Any]], study: str) -> list[str]:
    """RESULTS.md's comparisons of one study: what the pairing shares, then :func:`pair_table` (none when the
    study has no pairs, an architectures study of one model say)."""
    if not study_pairs(plan, study):
        return []
    # Two networks cannot share an initialization, but the same seed gives them the same data order and
    # augmentation draws, which is what pairing removes from the difference.
    shared = ("the same data order and augmentation draws; different networks cannot share an initialization"
              if study == "architectures" else "the same initialization, data order and augmentation draws")
    return ["", f"Each change against its baseline (same data, budget and seeds); the difference is in percentage "
            f"points of final test accuracy. Both arms ran with the same seeds ({shared}), so the first interval is "
            f"paired: Student's t on the per-seed differences (n - 1 degrees of freedom); Welch's interval, which "
            f"ignores the pairing, is beside it.", "", *pair_table(plan, summary, study)]


def ranking_line(rows: Sequence[dict[str, Any]]) -> str:
    """How stable the ranking of the arms' final test accuracy (raw weights) is over the seeds they share.

    A ranking by means can rest on one lucky seed; seed by seed, the top arm of the means should come
    first, and the top two should be the top two, on most seeds before a study's ranking is quoted.
    Arms with no finished seed are named and left out.
    """
    ranked = [row for row in rows if row["final_test_acc_by_seed"]]
    missing = [row["experiment"] for row in rows if not row["final_test_acc_by_seed"]]
    left_out = f" (no finished seed: {', '.join(missing)})" if missing else ""
    seeds = sorted(set.intersection(*(set(row["final_test_acc_by_seed"]) for row in ranked))) if ranked else []
    if len(ranked) < 2 or len(seeds) < 2:
        return f"Ranking: needs two arms and two seeds that every arm finished{left_out}."
    by_mean = sorted(ranked, key=lambda row: -sum(row["final_test_acc_by_seed"][s] for s in seeds))
    names = [row["experiment"] for row in by_mean]
    firsts = tops = 0
    for seed in seeds:
        order = [row["experiment"] for row in sorted(ranked, key=lambda row: -row["final_test_acc_by_seed"][seed])]
        firsts += order[0] == names[0]
        tops += set(order[:2]) == set(names[:2])
    top_two = (f"; {names[0]} and {names[1]} are the top two on {tops} of {len(seeds)}" if len(names) > 2 else "")
    return (f"Ranking by the mean final test accuracy (raw weights) over the {len(seeds)} seeds every arm "
            f"finished: {' > '.join(names)}{left_out}. {names[0]} is first on {firsts} of {len(seeds)} seeds"
            f"{top_two}.")


def _study_row(row: dict[str, Any]) -> str:
    failed = f" ({len(row['failed'])} failed: {row['failed'][0]})" if row["failed"] else ""
    if not row["params"]:
        return f"| {row['experiment']} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | 0{failed} |"
    return (f"| {row['experiment']} | {_pm(row['final_test_acc'])} | {_pm(row['best_test_acc'])} | "
            f"{_pm(row['final_ema_test_acc'])} | {_pm(row['final_train_acc'])} | {row['params'] / 1e6:.2f} | "
            f"{row['gflops']:.3f} | "
            f"{_pm(row['train_time_s'], 1)} | {_pm(row['img_per_s'], 0)} | {_pm(row['peak_memory_mib'], 0)} | "
            f"{_pm(row['ece'], 3)} | {row['seeds']}{failed} |")


def budget_sentence(plan: BenchmarkPlan) -> str:
    """Seeds and budget as the finished runs record them.

    The flags may not say: ``--report`` on a study run earlier is typed without its budget, and the
    record study trains for its preset's epochs whatever ``--epochs`` is.
    """
    done = [r for r in plan.results if r["status"] == "done"]
    if not done:
        return f"Seeds: {', '.join(map(str, plan.seeds))}. No run finished."

    def values(key: str) -> str:  # "10000", "all" (no subset), or "5/10" where the runs differ
        found = {r["config"][key] for r in done}
        return "/".join([str(v) for v in sorted(v for v in found if v)] + ["all"] * (None in found))

    seeds = sorted({r["seed"] for r in done})
    return (f"Seeds: {', '.join(map(str, seeds))}. Budget: {values('epochs')} epochs, "
            f"{values('subset')} training images, {values('test_subset')} test images.")


def write_report(plan: BenchmarkPlan) -> Path:
    """``RESULTS.md``, ``results.csv`` and the plots, from ``plan.results``."""
    import csv

    summary = summarize(plan.results, plan.experiments)
    out = plan.out_dir
    flat_keys = ["study", "experiment", "seed", "status", "final_test_acc", "final_ema_test_acc", "final_train_acc",
                 "best_test_acc", "best_epoch", "params", "gflops", "train_time_s", "img_per_s", "peak_memory_mib",
                 "peak_memory_kind", "ece", "error", "run_dir"]
    def write_csv(temporary: Path) -> None:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=flat_keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(plan.results)

    atomic_write(out / "results.csv", write_csv)

    lines = ["# Benchmark results", "",
             f"Command: `{plan.command}`", "",
             f"Machine: {environment_line()}. {budget_sentence(plan)}", "",
             "Headline: test accuracy after the last epoch (mean ± std over seeds). \"Best on test\" picks the best "
             "epoch on the test set itself and is optimistic. Train acc: on the last epoch's augmented batches "
             "(against the dominant label where images are mixed); far above the test accuracy, the network "
             "memorizes its training set. ECE: expected calibration error of the final weights, 15 equal-width "
             "bins. Peak memory on a CPU is the process's peak RSS, which only grows over a benchmark.",
             ""]
    for study in STUDIES:
        keys = [e.key for e in plan.experiments if e.study == study]
        if not keys:
            continue
        lines += [f"## {study}", "", "| experiment | final test acc % | best on test (optimistic) % | final EMA % "
                  "| train acc, last epoch % | params (M) | GFLOPs | train time (s) | img/s | peak memory (MiB) | ECE "
                  "| seeds |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [_study_row(summary[key]) for key in keys]
        lines += ["", ranking_line([summary[key] for key in keys])]
        lines += pair_section(plan, summary, study)
        lines.append("")
    lines += write_plots(plan, summary)
    atomic_write(out / "RESULTS.md", lambda temporary: temporary.write_text("\n".join(lines) + "\n"))
    return out / "RESULTS.md"


def write_plots(plan: BenchmarkPlan, summary: dict[str, dict[str, Any]]) -> list[str]:
    """The report's plots, written into ``plan.out_dir``; returns the markdown lines that show them.

    A per-epoch curve needs two evaluations: a study that evaluates once, at the end (``--eval-every`` =
    epochs, the cheap way), gets no curves plot, rather than a plot of single dots.
    """
    from utils.visualization import plot_accuracy_vs_time, plot_benchmark_accuracy, plot_benchmark_curves, \
        plot_reliability

    out = plan.out_dir
    plot_benchmark_accuracy(summary, out / "accuracy.png")
    plot_accuracy_vs_time(summary, out / "accuracy_vs_time.png")
    lines = ["## Plots", "", "![accuracy](accuracy.png)", "", "![accuracy against training time](accuracy_vs_time.png)",
             ""]
    if any(sum(mean == mean for mean, _ in row["curve"]) > 1 for row in summary.values()):  # NaN: not evaluated
        plot_benchmark_curves(summary, out / "curves.png")
        lines += ["![test accuracy per epoch](curves.png)", ""]
    else:
        (out / "curves.png").unlink(missing_ok=True)  # a dot plot that older report folders hold
        lines += ["Each run was evaluated once, at its end: no per-epoch curve (`--eval-every` sets how often).", ""]
    reliability = _reliability_inputs(plan)
    if reliability:
        plot_reliability(reliability, out / "reliability.png")
        lines += ["![reliability: baseline against label smoothing](reliability.png)", ""]
    return lines


def _reliability_inputs(plan: BenchmarkPlan) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Pooled test probabilities of the baseline and label-smoothing runs (techniques study), by name."""
    pooled = {}
    for name in ("standard", "label_smoothing"):
        files = [Path(r["run_dir"]) / "calibration.pt" for r in plan.results
                 if r["status"] == "done" and (r["study"], r["experiment"]) == ("techniques", name)]
        parts = [torch.load(f, weights_only=True) for f in files if f.exists()]
        if parts:
            pooled[name] = (torch.cat([p["calibration_probabilities"] for p in parts]),
                            torch.cat([p["calibration_labels"] for p in parts]))
    return pooled if len(pooled) == 2 else {}
