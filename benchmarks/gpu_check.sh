#!/bin/bash
# End-to-end checks of soravid on one CUDA GPU, each under its own time limit, everything
# logged to OUT/log.txt (default ./gpu-check): generate a minute and 5 s, judge, extend, train
# the tiny recipe and resume it, the same under torchrun (nccl), generate with what it made,
# the S and B recipes' step time and memory (train_step.py), speed.py, and an eval of 100
# clips. About 8 minutes on one H200; README, "Training on several GPUs", has its figures.
#
#   bash benchmarks/gpu_check.sh [OUT]
cd "$(dirname "$0")/.." || exit 1
OUT=${1:-gpu-check}
mkdir -p "$OUT" /tmp/soravid-gpu-check
TMP=/tmp/soravid-gpu-check
START=$(date +%s)
run() {
    local limit=$1 began
    shift
    began=$(date +%s)
    echo "=== [$((began - START)) s] $*"
    timeout "$limit" "$@"
    echo "--- rc=$? in $(($(date +%s) - began)) s"
}
CAPTION="a big red ball bouncing on a black background"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())"
    run 60 python3 -m soravid info
    run 120 python3 -m soravid generate "$CAPTION" --seconds 60 --device cuda -o $TMP/minute.mp4 --overwrite --json
    run 60 python3 -m soravid generate "$CAPTION" --seconds 5 --device cuda -o $TMP/five.mp4 --overwrite --json
    run 30 python3 -m soravid judge $TMP/minute.mp4 "$CAPTION" --json
    run 90 python3 -m soravid extend $TMP/minute.mp4 --seconds 10 --device cuda -o $TMP/extended.mp4 --overwrite --json
    rm -rf $TMP/tiny $TMP/tiny-ddp
    run 120 python3 -m soravid train --recipe tiny --out $TMP/tiny --quiet
    run 60 python3 -m soravid train --recipe tiny --out $TMP/tiny --resume --quiet
    run 120 python3 -m torch.distributed.run --standalone --nproc-per-node 1 -m soravid train --recipe tiny --out $TMP/tiny-ddp --quiet
    run 60 python3 -c "
from safetensors.torch import load_file
plain, ddp = (load_file(f'$TMP/{run}/model.safetensors') for run in ('tiny', 'tiny-ddp'))
print('largest |plain - torchrun| weight:', max((plain[k] - ddp[k]).abs().max().item() for k in plain))"
    run 60 python3 -m soravid generate "a small green square moving left" --model $TMP/tiny/model.safetensors --seconds 2 --device cuda -o $TMP/tiny.mp4 --overwrite --json
    run 300 python3 benchmarks/train_step.py S B --steps 25 --skip 5 --json "$OUT/train-step.json"
    run 120 python3 benchmarks/speed.py --seconds 5 60 --out "$OUT/speed.json"
    rm -rf $TMP/eval
    run 170 python3 -m soravid eval --n 100 --seed 5 --device cuda --out-dir $TMP/eval --quiet --json
    cp $TMP/eval/report.json "$OUT/eval-report.json" 2>/dev/null
    echo "=== done in $(($(date +%s) - START)) s"
} 2>&1 | tee "$OUT/log.txt"
