#!/usr/bin/env bash
# The device checks of the "several devices" work, in one short run on a machine
# with GPUs and TensorFlow (run from the repository root, in an environment where
# `pip install -e .` was done). Prints what it measures; writes under ${OUT:-/tmp}.
#
#   bash scripts/gpu_check.sh            # about 3 minutes on one GPU
#
# 1. what TensorFlow sees; 2. the probe step against Keras's own step
# (scripts/bench_probe.py: ratios, medians; its MirroredStrategy row runs on two
# logical CPUs); 3. peak memory per device, the probe on two replicas against
# Keras's distributed step (scripts/replica_memory.py: one GPU is split in two
# logical GPUs); 4. the watched step's cost (scripts/bench_watch.py); 5. the
# mixed-precision demos, healthy, underflowing and overflowing, under
# `gradscope run --headless` (verdicts and the per-layer CSV).
set -uo pipefail
out=${OUT:-/tmp}/gradscope-gpu-check
mkdir -p "$out"
export TF_CPP_MIN_LOG_LEVEL=3

echo "== devices"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
python -c "import tensorflow as tf; print('tensorflow', tf.__version__, 'GPUs:', tf.config.list_physical_devices('GPU'))"

echo "== probe step / Keras step (bench_probe)"
timeout 300 python scripts/bench_probe.py --pairs 30 2>&1 | tail -8

echo "== peak memory per device (replica_memory)"
timeout 300 python scripts/replica_memory.py 2>&1 | tail -6

echo "== watched step (bench_watch)"
timeout 300 python scripts/bench_watch.py --pairs 5 --no-memory 2>&1 | tail -8

for demo in healthy_mixed_precision_cnn gradient-underflow loss-scale-overflow; do
  echo "== gradscope run --headless scripts/demo/$demo.py"
  timeout 300 python -m gradscope run --headless --probe-only --seed 0 --force \
    --csv "$out/$demo.csv" --verdicts "$out/$demo-verdicts.csv" "scripts/demo/$demo.py" \
    >/dev/null 2>"$out/$demo.stderr"
  echo "exit $?"
  cat "$out/$demo-verdicts.csv" 2>/dev/null | cut -c1-160
done
echo "== files in $out"
