#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine: system packages, then a virtualenv in .venv with the pinned requirements.
# `--app` installs only what the app needs; the default installs the test tools too.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(sox libsox-fmt-mp3)
[ "${1:-}" = "--app" ] || apt_packages+=(espeak-ng chromium)
missing=()
for package in "${apt_packages[@]}"; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
requirements=requirements-dev.txt; [ "${1:-}" = "--app" ] && requirements=requirements.txt
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements"
.venv/bin/python -m pip check
