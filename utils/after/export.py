"""Use a trained model outside this repository: ``main_modern.py --export CHECKPOINT``.

Two formats, both from torch's graph capture (``torch.export``, which traces the model into a graph
of ATen operations with the batch size left symbolic):

- **ONNX** (``.onnx``, torch's current exporter, ``torch.onnx.export(..., dynamo=True)``): runs in
  onnxruntime and other ONNX engines, from Python, C++, C#, JavaScript...;
- **ExportedProgram** (``.pt2``, ``torch.export.save``): ``torch.export.load(path).module()`` gives
  back a callable module without this repository's code.

The normalization is part of the exported graph (:class:`ImageClassifierForUInt8`): the exported
model takes what an image decoder gives, uint8 RGB of shape (N, 3, H, W) at the run's image size,
and returns logits (N, classes). Each file is checked after it is written: loaded back (ONNX through
onnxruntime), run on the run's own test images, and compared with the PyTorch model (fp32): the
largest logit difference and how many top-1 classes agree are printed.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from utils.after.inference import TrainedModel, load_trained_model, test_sample
from utils.config import EXPORT_FORMATS
from utils.errors import UserError
from utils.files import atomic_write, claim_stem

CHECK_IMAGES = 256
EXTRAS_HINT = "pip install -r requirements-extras.txt"


class ImageClassifierForUInt8(nn.Module):
    """uint8 RGB (N, 3, H, W) → logits: the run's normalization, then the model (what an export holds)."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std_t))
        self.register_buffer("shift", -torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) / std_t)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.float() * self.scale + self.shift)


def export_checkpoint(checkpoint: str, formats: Sequence[str] = EXPORT_FORMATS, out_dir: Optional[str] = None,
                      check_images: int = CHECK_IMAGES) -> dict[str, dict]:
    """Export the model of ``checkpoint`` to each of ``formats``; check each against PyTorch; return what was found.

    Files are named after the checkpoint (``best.pt`` → ``best.onnx``, ``best.pt2``; ``best-2.*`` when those
    exist), beside it or in ``out_dir``.
    """
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise UserError(f"unknown export format {unknown[0]!r}; choose from {', '.join(EXPORT_FORMATS)}")
    folder = Path(out_dir) if out_dir else Path(checkpoint).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the export folder {folder} ({error.strerror or error}); choose another "
                        f"--export-dir") from None
    trained = load_trained_model(checkpoint, "cpu")  # exported in fp32 on the CPU: what the files will hold
    module = ImageClassifierForUInt8(trained.model.to(memory_format=torch.contiguous_format).float(),
                                     trained.mean, trained.std).eval()
    images, where = check_inputs(trained, check_images)
    size = trained.image_size
    print(f"exporting {trained.description} from {checkpoint}: input uint8 RGB (N, 3, {size}, {size}), "
          f"normalization inside; output logits (N, {len(trained.class_names)}); checked on {len(images)} {where}")
    if trained.config.tta != "none":
        print(f"note: the exported model is one plain view; the run's own accuracy averaged --tta {trained.config.tta}")
    # Never over an earlier export, nor over one running at the same time: the names are claimed first.
    stem = claim_stem(folder, Path(checkpoint).stem, [f".{fmt}" for fmt in formats])
    paths = {fmt: folder / f"{stem}.{fmt}" for fmt in formats}
    results = {}
    try:
        for fmt, path in paths.items():
            run = EXPORTERS[fmt](module, images[:2], path, trained)
            results[fmt] = compare_with_pytorch(module, run, images) | {"path": str(path), "bytes": path.stat().st_size}
            r = results[fmt]
            print(f"  {fmt:<4} {path}  {r['bytes'] / 2 ** 20:.1f} MiB | against PyTorch: max logit difference "
                  f"{r['max_logit_difference']:.2e}, top-1 agreement {r['top1_agree']}/{r['images']}")
    except BaseException:
        for path in paths.values():  # the claimed names, empty or half written: not an export
            if path.exists() and (path.stat().st_size == 0 or str(path) not in {r["path"] for r in results.values()}):
                path.unlink()
        raise
    return results


def check_inputs(trained: TrainedModel, count: int) -> tuple[torch.Tensor, str]:
    """The run's own test images (a stratified sample), or random images when its data is not here."""
    try:
        images, _ = test_sample(trained, count)
        return images, "test images of the run's data"
    except UserError as error:
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (count, 3, trained.image_size, trained.image_size), dtype=torch.uint8,
                               generator=generator)
        return images, f"random images (the run's test data cannot be read: {str(error)[:80]})"


def _exported_program(module: nn.Module, example: torch.Tensor, trained: TrainedModel):
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        return torch.export.export(module, (example,), dynamic_shapes={"images": {0: batch}})
    except Exception as error:  # torch.export names the Python construct it cannot capture
        raise UserError(f"{trained.config.model} cannot be exported: torch.export fails "
                        f"({error.__class__.__name__}: {str(error).strip().splitlines()[0][:160]})") from None


def export_pt2(module: nn.Module, example: torch.Tensor, path: Path, trained: TrainedModel) -> Callable:
    program = _exported_program(module, example, trained)
    buffer = io.BytesIO()  # (torch.export.save wants a name ending in .pt2; the atomic write's temporary has none)
    torch.export.save(program, buffer)
    atomic_write(path, lambda temporary: temporary.write_bytes(buffer.getvalue()))
    loaded = torch.export.load(str(path)).module()
    return lambda images: loaded(images)


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path, trained: TrainedModel) -> Callable:
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's exporter needs it; asked here for a clear message)
    except ImportError as error:
        raise UserError(f"--export onnx needs the optional packages onnx, onnxscript and onnxruntime "
                        f"({error.name} is missing): {EXTRAS_HINT}") from None
    program = _exported_program(module, example, trained)
    with _quiet():  # the exporter reports each pass it runs; the check below says what matters
        try:
            onnx_program = torch.onnx.export(program, dynamo=True, input_names=["images"], output_names=["logits"])
        except Exception as error:
            raise UserError(f"{trained.config.model} cannot be exported to ONNX ({error.__class__.__name__}: "
                            f"{str(error).strip().splitlines()[0][:160]})") from None
    atomic_write(path, lambda temporary: onnx_program.save(str(temporary)))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda images: torch.from_numpy(session.run(None, {"images": images.numpy()})[0])


EXPORTERS = {"onnx": export_onnx, "pt2": export_pt2}


@torch.inference_mode()
def compare_with_pytorch(module: nn.Module, run: Callable, images: torch.Tensor, batch_size: int = 128) -> dict:
    """Largest |logit difference| and top-1 agreement of ``run`` against ``module`` on ``images``."""
    difference, agree = 0.0, 0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        expected, got = module(batch), run(batch).float()
        difference = max(difference, (expected - got).abs().max().item())
        agree += int((expected.argmax(1) == got.argmax(1)).sum())
    return {"max_logit_difference": difference, "top1_agree": agree, "images": len(images)}


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logger = logging.getLogger("torch.onnx")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logger.setLevel(level)
