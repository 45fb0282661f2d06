#!/usr/bin/env bash
# Install what community-gateway needs on a Debian machine: the servers its tests run
# (Mosquitto, InfluxDB 1.x, VictoriaMetrics), espeak-ng, and a Python venv in .venv.
# Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(mosquitto influxdb victoria-metrics espeak-ng chromium fonts-noto-cjk openssl python3-venv)
missing=()
for pkg in "${debs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# python3-venv is only needed where the interpreter lacks ensurepip (Debian's own python3).
if [ "${#missing[@]}" -gt 0 ] && python3 -c 'import ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}")
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sed '/^$/d')
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Debian packages may start system services; our tests start their own on free ports.

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup: ready (.venv)"
