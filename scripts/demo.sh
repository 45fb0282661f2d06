#!/usr/bin/env bash
# Set up (if needed) and run the demo: embedded broker, simulated community, live dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/community-gateway demo "$@"
