#!/usr/bin/env bash
# Installs everything this project needs on a fresh Debian/Ubuntu machine with Python 3.11.
#   bash scripts/setup.sh
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# OSMesa renders MuJoCo frames on machines without a GPU (MUJOCO_GL=osmesa).
if ! ldconfig -p | grep -q libOSMesa; then
  echo "[setup] installing the Debian package libosmesa6 (CPU rendering for MuJoCo)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libosmesa6 >/dev/null; }; then
    echo "[setup] could not install libosmesa6. Install it by hand (apt-get install libosmesa6)," >&2
    echo "        or on a GPU machine set MUJOCO_GL=egl; state-only evaluation works without it." >&2
  fi
fi

echo "[setup] installing Python packages from requirements.txt"
python -m pip install -q --disable-pip-version-check -r requirements.txt
echo "[setup] done"
