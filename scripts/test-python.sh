#!/usr/bin/env bash
# Tests of the Python package (python/, `pip install ./python`): makes or reuses a venv
# (.venv-py/, or $GRADFLOW_PY_VENV), installs torch 2.13.0 (the CPU build where pip finds one,
# e.g. through PIP_FIND_LINKS), pytest, transformers and accelerate from PyPI, installs the package
# and runs pytest on python/tests. Exit status: pytest's; "no tests collected" counts as a failure.
#
# The round-trip tests run the Swift binary ($GRADFLOW_BIN, else .build/release/gradflow) and are
# skipped, with the reason, when it is absent: build it first (swift build -c release) to run them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${GRADFLOW_PY_VENV:-.venv-py}
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
# A local folder of wheels (this machine kind has torch's CPU build in /opt/wheels) is used when it
# exists, also without $PIP_FIND_LINKS: PyPI's own torch wheel is the much larger CUDA build.
wheels=()
if [ -d /opt/wheels ]; then wheels=(--find-links /opt/wheels); fi
"${pip[@]}" install --quiet "${wheels[@]}" "torch==2.13.0" "pytest==9.2.0" "transformers==5.25.0" "accelerate==1.16.0"
# --no-deps: torch is in place; --force-reinstall: the package as it is in this tree.
"${pip[@]}" install --quiet --no-deps --force-reinstall ./python

export GRADFLOW_BIN=${GRADFLOW_BIN:-$root/.build/release/gradflow}
# One intra-op thread: the tests' models are tiny, and spinning threads cost more than they help.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The install builds the refiner's fused C kernels (gradflow/refine/_fused.c): a test fails if it
# did not, so that CI does not pass on the torch path alone. GRADFLOW_REQUIRE_FUSED=0 lifts that on
# a machine without a C compiler.
export GRADFLOW_REQUIRE_FUSED=${GRADFLOW_REQUIRE_FUSED:-1}
# From the repository root, so `import gradflow` is the installed package, not python/gradflow.
status=0
"$venv/bin/python" -m pytest -q -rs python/tests "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests in python/tests" >&2
  exit 1
fi
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ]; then
  # The refiner's tests again with the kernels off: the torch path that defines the statistics
  # (and runs on CUDA, float64 and machines without the C module) stays tested.
  echo "refiner tests with the fused kernels off (GRADFLOW_FUSED=0):"
  GRADFLOW_FUSED=0 "$venv/bin/python" -m pytest -q -rs python/tests/test_refine_axes.py \
    python/tests/test_refine_attention.py python/tests/test_refine_core.py || status=$?
fi
exit "$status"
