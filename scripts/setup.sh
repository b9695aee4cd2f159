#!/usr/bin/env bash
# Installs everything this project needs on a fresh Debian/Ubuntu machine with Python 3.11.
#   bash scripts/setup.sh
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: OSMesa renders MuJoCo frames on machines without a GPU (MUJOCO_GL=osmesa); Chromium is the
# headless browser the tests of the HTML reports load them in (tests/test_report_pages.py).
APT_PACKAGES=()
ldconfig -p | grep -q libOSMesa || APT_PACKAGES+=(libosmesa6)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || APT_PACKAGES+=(chromium)
if [ ${#APT_PACKAGES[@]} -gt 0 ]; then
  echo "[setup] installing the Debian packages ${APT_PACKAGES[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  if ! { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null; }; then
    echo "[setup] could not install ${APT_PACKAGES[*]}. Install them by hand (apt-get install ${APT_PACKAGES[*]})." >&2
    echo "        libosmesa6: on a GPU machine set MUJOCO_GL=egl instead; state-only evaluation works without it." >&2
    echo "        chromium: only the browser tests of the report pages need it." >&2
  fi
fi

echo "[setup] installing Python packages from requirements.txt"
python -m pip install -q --disable-pip-version-check -r requirements.txt
echo "[setup] done"
