#!/usr/bin/env bash
# Side-by-side Gradflow vs PyTorch training throughput; see bench/compare.py --help.
# Creates bench/.venv first when it is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ -x "$here/.venv/bin/python" ]] || "$here/setup.sh"
exec python3 "$here/compare.py" "$@"
