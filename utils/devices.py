"""Which device a run uses, and what that device can do: chosen here, once, for every entry point."""
from __future__ import annotations

import ctypes
import ctypes.util

import torch

from utils.errors import UserError


def select_device(name: str) -> torch.device:
    """``auto``: CUDA, else Apple's MPS, else CPU. Asking for a device that is absent is a user error."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA GPU is visible; use --device cpu or auto")
    if name == "mps" and not has_mps:
        raise UserError("--device mps asked for, but MPS is not available; use --device cpu or auto")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Does this CPU do bf16 arithmetic in hardware (AVX512-BF16 or AMX)? Elsewhere bf16 is emulated, and slower."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:  # not Linux: keep fp32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_supported(device: torch.device) -> bool:
    return device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())


def tune_cuda(tf32: bool) -> None:
    """cuDNN autotuning (fixed input shapes: time the algorithms once, keep the fastest) and TF32.

    TF32 (10-bit mantissa) matmuls and convolutions run several times fp32's speed on Ampere and later.
    """
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Let the C allocator keep freed memory for the next step instead of giving it back to the system.

    A CPU training step frees and re-allocates the same large activations (hundreds of MB at batch
    1024) every step. glibc serves each such block with a fresh ``mmap`` and returns it with
    ``munmap`` on free, so every step pays the kernel to zero and map its memory again, page by page:
    on a 2-core CPU the speed preset spent a quarter of a step in page faults (max-pool's backward
    zero-filling a fresh gradient). With mmap off and no trimming the blocks come from the heap and are
    reused: the process keeps the memory of its largest step (which it needed anyway) until it exits.
    Only the process's own allocator changes; glibc only (elsewhere: nothing to do, False).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
    except (OSError, AttributeError, TypeError):  # no libc found, or not glibc (musl, macOS, Windows)
        return False
