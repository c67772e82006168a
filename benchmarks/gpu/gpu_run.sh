#!/usr/bin/env bash
# The whole GPU visit in one command: unpack what travelled in .gpu/, run the suite into OUT, print a summary.
#
# Here, once (nothing below needs the network there):
#   mkdir -p .gpu && tar -czf .gpu/cifar10-jpeg.tgz -C ../shared/data cifar10-jpeg
#   pip download airbench==0.1.8 --no-deps -d .gpu          # pure Python: unpacked there, not built
# On the device machine (carry: .gpu), under its 10-minute limit:
#   bash benchmarks/gpu/gpu_run.sh "$OUT"                         # extra flags go to gpu_suite.py
# Then here: copy OUT into benchmarks/results/gpu-<date>/ and run benchmarks/gpu/gpu_docs.py on its gpu-suite.json.
set -uo pipefail
if [ $# -lt 1 ] || [ -z "$1" ]; then
  echo "usage: bash benchmarks/gpu/gpu_run.sh OUT [gpu_suite.py flags]  (OUT: a new folder for the results)" >&2
  exit 2
fi
out=$1
shift
if [ -e "$out/gpu-suite.json" ] || [ -e "$out/gpu-run.log" ]; then
  echo "gpu_run.sh: $out holds the results of an earlier visit; give a new folder" >&2
  exit 2
fi
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
mkdir -p "$out"
{
  echo "== $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  python3 -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "torchvision", torchvision.__version__)'
} 2>&1 | tee "$out/gpu-run.log"

unpacked=${TMPDIR:-/tmp}/gpu-run-data  # outside the tree, so a second visit carries only the tarball
data=$unpacked/cifar10-jpeg
if [ ! -d "$data/train" ]; then
  mkdir -p "$unpacked" && tar -xzf .gpu/cifar10-jpeg.tgz -C "$unpacked" \
    || { echo "gpu_run.sh: cannot unpack .gpu/cifar10-jpeg.tgz (carry .gpu)" >&2; exit 2; }
fi
airbench=$(ls .gpu/airbench-*.tar.gz 2>/dev/null | head -n 1)
if [ -n "$airbench" ]; then
  mkdir -p /tmp/airbench-src && tar -xzf "$airbench" -C /tmp/airbench-src
  export PYTHONPATH="$(ls -d /tmp/airbench-src/airbench-*/ | head -n 1)${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "gpu_run.sh: no .gpu/airbench-*.tar.gz: the airbench item will say airbench is missing" | tee -a "$out/gpu-run.log"
fi

python3 benchmarks/gpu/gpu_suite.py --data-dir "$data" --out "$out" "$@" 2>&1 | tee -a "$out/gpu-run.log"
status=${PIPESTATUS[0]}
echo "== summary (exit $status)"
[ -f "$out/gpu-suite.md" ] && grep -E '^## |^\| (resnet18|--preset|preset|airbench94) |Time ratio|exit [0-9]' "$out/gpu-suite.md"
exit "$status"
