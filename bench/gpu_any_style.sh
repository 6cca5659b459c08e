#!/usr/bin/env bash
# The any-style encoder–decoder's GPU checks, as one script for a lent GPU machine (device tool):
# speed at 1024² (goal: at most 15 ms on an H100/H200), then a stage-style training run that
# continues the shipped decoders (what a CPU cannot afford), with its figures.
#   bash bench/gpu_any_style.sh PAINTING [MINUTES]        # writes $OUT (or bench/out) files
set -euo pipefail
painting=${1:?usage: gpu_any_style.sh PAINTING [MINUTES]}
minutes=${2:-6}
out=${OUT:-bench/out}
mkdir -p "$out"
python -m pip install -q -e . 2>/dev/null || true
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for precision in fp16 bf16 fp32; do
  python bench/bench_any_style.py --style "$painting" --device cuda --precision "$precision" --repeats 20 \
    --arbitrary arbitrary-fast | tee "$out/any_style_speed_$precision.txt"
done
if [ -d runs/photos/train ] && [ -d runs/styles/train_flat ]; then
  ganstyle train-decoder --stage style --init-from weights/any-style --content runs/photos/train \
    --paintings runs/styles/train_flat --out "$out/any_style_gpu" --image-size 256 --batch-size 16 \
    --steps 100000 --max-minutes "$minutes" --checkpoint-every 500 --sample-every 500 --no-progress
fi
