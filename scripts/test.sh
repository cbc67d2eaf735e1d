#!/usr/bin/env bash
# The tests, as CI runs them (after scripts/setup.sh): the release binary, the Python package's
# tests (python/, in their own venv .venv-py/; its round trips run the binary), then the Swift
# tests, end-to-end ones included (the attach test drives the Python example with .venv-py).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release -Xswiftc -enable-testing --product gradflow
bash scripts/test-python.sh
swift test -c release -Xswiftc -enable-testing --disable-xctest
