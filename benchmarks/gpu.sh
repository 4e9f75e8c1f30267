#!/usr/bin/env bash
# The GPU check of flimexplore, one command, at most about 8 minutes on one GPU; installs nothing.
#
#   benchmarks/gpu.sh [--device cuda|cpu] [--quick] [--json PATH] [--budget-s SECONDS]
#
# Runs W1 (fish 128x128, 150 models) on the device and on the CPU and checks that their Dice agree
# (<= 1e-3); reruns W1 with --precision tf32 and bf16 and reports the Dice change; runs W2 (eggs
# 400x400, 313 validation images, 3 x 150 models) within a time budget and reports time per model.
# Writes one JSON (default benchmarks/results/gpu.json). `--device cpu --quick` is the CPU smoke test
# that CI runs. Needs a CUDA build of torch already installed for --device cuda.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
exec timeout 480 "$python" "$here/_gpu.py" "$@"
