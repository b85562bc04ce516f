#!/usr/bin/env bash
# The GPU check of issue #17, ready for a short window on a machine with an NVIDIA GPU: records the
# card, makes the Vulkan loader and NVIDIA's Vulkan driver visible to onnxruntime-node's bundled
# WebGPU execution provider (Dawn), and runs the bench's `gpu` scenario (full-width
# dc-ae-f32c32-in-1.0 decode at 512² and 1024², fp32 and fp16, webgpu vs cpu, plus cuda where its
# provider libraries are installed) within 9 minutes.
#
# CUDA: onnxruntime-node's install script would fetch the CUDA provider libraries from NuGet; dcae
# never runs it (pnpm-workspace.yaml, ONNXRUNTIME_NODE_INSTALL=skip) and machines without internet
# cannot fetch them, so the cuda cases are skipped with the reason unless the libraries are already
# installed.
#
# Needs: the repository installed and built (`npm run setup`, or at least `pnpm --filter
# @dcae/bench... build`), Node 20. Vulkan loader: Debian's libvulkan1; on a host without apt access,
# put its .deb (and libvulkan1's dependencies) into .gl/ and they are unpacked here.
# Results: $OUT (or bench-results/gpu-check): card.txt, log.txt and the bench's JSON/Markdown/SVG.
# Arguments go to the bench after the defaults: `gpu-check.sh --quick --samples 1` is the smoke run
# that proves the script on a machine without a GPU (the webgpu provider then runs on Chromium's
# SwiftShader Vulkan driver; docs/benchmarks.md, "GPU").
set -uo pipefail
cd "$(dirname "$0")/../../.."
out=${OUT:-bench-results/gpu-check}
mkdir -p "$out"

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || echo 'nvidia-smi: not available'
  uname -a
  node --version
} >"$out/card.txt"

if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  if compgen -G '.gl/*.deb' >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  elif command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvulkan1 >/dev/null 2>&1 || true
  fi
fi
echo "vulkan loader: $(ldconfig -p | grep -m1 'libvulkan.so.1' || echo missing)" >>"$out/card.txt"

if [ -z "${VK_DRIVER_FILES:-}" ]; then
  for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then
      export VK_DRIVER_FILES=$icd
      break
    fi
  done
fi
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}" >>"$out/card.txt"
cat "$out/card.txt"

if [ ! -f apps/bench/dist/main.js ]; then
  echo 'apps/bench/dist/main.js is missing: run `npm run setup` first' | tee -a "$out/log.txt"
  exit 2
fi

# 3 samples per case keep the 8 cases (2 sizes × fp32/fp16 × webgpu/cpu) plus model generation and
# session setup inside the window.
timeout 540 node --expose-gc apps/bench/dist/main.js gpu --samples 3 --warmup 1 --out "$out" "$@" 2>&1 | tee -a "$out/log.txt"
exit "${PIPESTATUS[0]}"
