#!/usr/bin/env bash
# Fetches the Debian packages with the training and held-out photographs WITHOUT installing them
# (apt-get download + dpkg -x), then selects, resizes and records them (prepare-data.mjs).
#   usage: packages/model-tiny/scripts/prepare-data.sh [WORK_DIR]   (default /tmp/dcae-model-tiny-data)
# Output: WORK_DIR/train/*.png (short side 384), WORK_DIR/heldout/*.png (as shipped), and
# packages/model-tiny/data-manifest.json (package, version, path, sha256 and licence of every file).
set -euo pipefail
WORK="${1:-/tmp/dcae-model-tiny-data}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PACKAGES=(lomiri-wallpapers-16.04 mate-backgrounds plasma-workspace-wallpapers python3-skimage)
mkdir -p "$WORK/debs" "$WORK/x"
cd "$WORK/debs"
missing=()
for p in "${PACKAGES[@]}"; do ls "${p}"_*.deb >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get download "${missing[@]}"
fi
for deb in *.deb; do
  name="${deb%%_*}"
  [ -d "$WORK/x/$name" ] || { mkdir -p "$WORK/x/$name" && dpkg -x "$deb" "$WORK/x/$name"; }
done
node "$HERE/prepare-data.mjs" "$WORK"
