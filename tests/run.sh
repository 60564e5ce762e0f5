#!/usr/bin/env bash
# The project's test command (the README's, and the one .ci/run calls): every notebook, then the pytest suite.
# Sized for a 2-core machine: two notebooks at a time with one thread each, then pytest with both cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
echo "== nbdev_test (notebooks; cells flagged slow/gpu are skipped) =="
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nbdev_test --n_workers 2 --timing "$@"
echo "== pytest (tests/) =="
python -m pytest -q tests
