#!/usr/bin/env bash
# Creates bench/.venv with the CPU build of PyTorch 2.13.0 (plus numpy) for the reference trainer.
# Idempotent: re-running with a working venv does nothing but the checks.
# Refuses CUDA builds: the index used is PyTorch's CPU index, and the result is checked.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
py="$venv/bin/python"

if [[ ! -x "$py" ]]; then
    python3 -m venv "$venv"
fi

if ! "$py" -c 'import torch, numpy, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
    # "+cpu" pins the CPU variant, so no nvidia-* packages are pulled. The wheel comes from pip's
    # find-links (this machine keeps it in /opt/wheels; set TORCH_WHEEL_DIR to use another folder).
    wheels="${TORCH_WHEEL_DIR:-/opt/wheels}"
    if ! "$venv/bin/pip" install --quiet --find-links "$wheels" "torch==2.13.0+cpu" numpy; then
        echo "bench/setup.sh: could not install torch==2.13.0+cpu; put the CPU wheel in $wheels" \
             "(or set TORCH_WHEEL_DIR) and run again" >&2
        exit 1
    fi
fi

"$py" - <<'PY'
import sys, torch, numpy
if torch.version.cuda is not None:
    sys.exit(f"bench/setup.sh: torch {torch.__version__} is a CUDA build ({torch.version.cuda}); expected CPU only")
print(f"bench/.venv ready: torch {torch.__version__} (cuda: {torch.version.cuda}), numpy {numpy.__version__}")
PY
