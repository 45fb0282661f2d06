#!/usr/bin/env bash
# Set up (if needed) and run every check: lint, types, the test suite against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check gateway tests bench edge_models
.venv/bin/ruff format --check gateway tests bench edge_models
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
