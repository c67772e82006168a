"""Running a study: every (experiment, seed) as one ordinary training run, in its own folder.

Every run goes through ``utils.experiment.run_training`` (what ``main_modern.py`` calls), so it
checkpoints and resumes like any run. ``results.json`` is rewritten after every run, and a re-run of
the same command skips what is finished, resumes what was interrupted, and retries what failed. A
folder records the command's signature (``benchmark.json``): another command is refused there.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from utils import distributed
from utils.config import TrainConfig
from utils.devices import select_device
from utils.errors import RunStopped, UserError
from utils.evaluation import evaluate_saved
from utils.files import atomic_write, write_json
from utils.model_cost import forward_gflops
from utils.studies.catalogue import BenchmarkPlan, Experiment, experiment_config
from utils.studies.statistics import expected_calibration_error
from utils.training.checkpoint import load_checkpoint
from utils.training.run_dir import RUN_FILES, RunLock, holds_checkpoint

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
    resume = holds_checkpoint(run_dir)
    config = config.replace(resume=resume)
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
SIGNATURE_IGNORES = TrainConfig.result_free_fields()  # a study is the same study whatever these say


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
