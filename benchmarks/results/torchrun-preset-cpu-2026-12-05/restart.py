"""Kill -9 one worker of the torchrun preset run after its first checkpoint; --max-restarts 1 must finish it."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
D = Path("/tmp/d45"); out = D / "restarted"
argv = ["torchrun", "--standalone", "--nproc-per-node", "2", "--max-restarts=1", "main_modern.py", "--preset", "speed",
        "--epochs", "5", "--data-dir", str(D / "small"), "--seed", "0", "--device", "cpu", "--no-progress",
        "--workers", "0", "--cache-dir", "", "--batch-size", "10", "--output-dir", str(out)]
print("$", " ".join(a if a else "''" for a in argv), flush=True)
p = subprocess.Popen(argv, cwd="/work/main")
while not (out / "last.pt").exists():
    time.sleep(0.02)
children = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
workers = [int(c) for c in children]
import torch
print(f"last.pt written (epoch {torch.load(out / 'last.pt', weights_only=False)['epoch']}); kill -9 worker {workers[-1]}", flush=True)
os.kill(workers[-1], signal.SIGKILL)
print("torchrun exit", p.wait(), flush=True)
a = json.loads((D / "ddp" / "metrics.json").read_text())["history"]
b = json.loads((out / "metrics.json").read_text())["history"]
keys = [k for k in a[0] if "time" not in k and not k.endswith("_s")]
same = all(x.get(k) == y.get(k) for x, y in zip(a, b) for k in keys) and len(a) == len(b)
print("history equal to the uninterrupted torchrun run (timings left out):", same, keys)
for x, y in zip(a, b):
    print(x["epoch"], x.get("train_loss"), y.get("train_loss"), x.get("probe_acc"), y.get("probe_acc"))
