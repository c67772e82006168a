#!/bin/bash
# Issue 45 demonstration: the speed preset (3 frozen-bias epochs) for 5 epochs under torchrun and in one process.
set -x
cd /work/main
D=/tmp/d45; rm -rf $D/ddp $D/one $D/restarted
COMMON="--preset speed --epochs 5 --data-dir $D/small --seed 0 --device cpu --no-progress --workers 0 --cache-dir"
time torchrun --standalone --nproc-per-node 2 main_modern.py $COMMON "" --batch-size 10 --output-dir $D/ddp; echo "exit $?"
time python main_modern.py $COMMON "" --batch-size 20 --output-dir $D/one; echo "exit $?"
