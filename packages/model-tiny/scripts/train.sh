#!/usr/bin/env bash
# Trains (or resumes) @dcae/model-tiny's phase-1 run with `dcae train`, in the data folder that
# prepare-data.sh made. Safe to stop (Ctrl-C saves a checkpoint) and to rerun: it resumes.
#   usage: packages/model-tiny/scripts/train.sh [WORK_DIR] [RUN_DIR]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PKG="$(dirname "$HERE")"
REPO="$(cd "$PKG/../.." && pwd)"
WORK="${1:-/tmp/dcae-model-tiny-data}"
RUN="${2:-$WORK/runs/phase1}"
cd "$WORK"
exec node "$REPO/apps/cli/dist/bin.js" train \
  --model "$PKG/config.json" --init random --seed 0 \
  --data train --out "$RUN" --config "$PKG/train/phase1.json" --resume
