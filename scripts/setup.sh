#!/usr/bin/env bash
# Installs what gradflow needs to build, test and run on Debian (run as root, or with sudo):
# OpenBLAS, ncursesw and Open MPI (linked as system libraries), mpirun (data-parallel runs and
# their test), pkg-config, tmux (end-to-end dashboard tests), gcc and python3-dev (the Python package's optional C
# kernels, gradflow/refine/_fused.c), and a small Python venv with the
# real `tensorboard` package (export round-trip test).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends libopenblas-dev libncursesw5-dev libopenmpi-dev openmpi-bin pkg-config tmux gcc python3-dev
if [ ! -x .venv-tools/bin/python ] || ! .venv-tools/bin/python -c "import tensorboard" 2>/dev/null; then
  python3 -m venv .venv-tools
  .venv-tools/bin/pip install --quiet --disable-pip-version-check tensorboard
fi
