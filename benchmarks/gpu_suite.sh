#!/usr/bin/env bash
# Issue 9's GPU measurements in one short run (< 8 min on one H200), for a session that is lent a GPU:
#   1. benchmarks/throughput.py: Stage I and Stage II, B = 1, 2, 4, 8 vmapped against one by one
#   2. Stage I + Stage II of one default scene (configs/synthetic/door_hoi.yaml, 256x192, 32 frames), each stage
#      timed end to end (process start, compiles and outputs included; no video)
#   3. benchmarks/gpu_rasterizer_vs_gsplat.py at 30k Gaussians x 40 cameras x 320x240 (gsplat CUDA in the same run)
# Results (JSON and the logs) go to $OUT (the device tool's output folder) or ./gpu_results.
#
#   bash benchmarks/gpu_suite.sh           # on the GPU machine
#   bash benchmarks/gpu_suite.sh --smoke   # toy sizes: checks the script on a CPU (no gsplat part without CUDA)
#
# The GPU machine (../shared/gpu/README.md) has python3 with jax[cuda], torch, flax, optax, chex, numpy, opencv,
# but not jaxlie, gsplat, smplx, orbax and a few more. Bring them as wheels once, here, before the device call:
#   echo /.whl/ >> .git/info/exclude
#   .venv/bin/pip download --no-deps -d .whl jaxlie==1.5.0 gsplat==1.5.3 tqdm==4.70.1 pyyaml==6.0.4 \
#       imageio==2.38.1 --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64
# and start the device command with (carry: [".whl"]):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
# gsplat compiles its CUDA kernels on first import (64 s there with the flags below).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_results}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0 TORCH_EXTENSIONS_DIR=/tmp/tex
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1

"$PY" - <<'PY' 2>&1 | tee "$OUT/env.txt"
import importlib
import jax
print("jax", jax.__version__, jax.devices())
for m in ("jaxlie", "flax", "optax", "cv2", "yaml", "tqdm", "scipy", "torch", "gsplat", "orbax.checkpoint"):
    try:
        importlib.import_module(m)
        print("ok", m)
    except Exception as e:  # report every missing package at once
        print("MISSING", m, type(e).__name__, e)
PY

t0=$(date +%s)
if [[ $SMOKE == 1 ]]; then
  "$PY" benchmarks/throughput.py --smoke --out "$OUT/throughput.json" 2>&1 | tee "$OUT/throughput.log"
else
  "$PY" benchmarks/throughput.py --batch-sizes 1 2 4 8 --out "$OUT/throughput.json" 2>&1 | tee "$OUT/throughput.log"
fi
echo "throughput: $(( $(date +%s) - t0 )) s"

# One default scene, Stage I and Stage II each timed end to end (generate and segment first, untimed).
CFG=configs/synthetic/door_hoi.yaml
SET=(--set output.video=false --set output.plots=false --set output.progress=false)
if [[ $SMOKE == 1 ]]; then
  SET+=(--set synthetic.width=96 --set synthetic.height=72 --set synthetic.num_frames=6
        --set stage1.iters_per_frame=4 --set stage1.steps_per_chunk=2 --set stage2.iters=4
        --set stage2.steps_per_chunk=2 --set stage2.human_gaussians=64 --set segmentation.dynamic_px=2.0
        --set segmentation.static_px=0.8 --set segmentation.quasi_static_min_px=0.5)
fi
RUN=/tmp/gpu_suite_door_hoi
rm -rf "$RUN" "$OUT/scene_times.txt"
declare -A ms
for st in generate preprocess segment; do
  "$PY" run.py --config "$CFG" "${SET[@]}" --stage $st --out "$RUN" --resume > "$OUT/scene_$st.log" 2>&1
done
for st in stage1 stage2; do
  s=$(date +%s%N)
  "$PY" run.py --config "$CFG" "${SET[@]}" --stage $st --out "$RUN" --resume > "$OUT/scene_$st.log" 2>&1
  ms[$st]=$(( ($(date +%s%N) - s) / 1000000 ))
  echo "$st ${ms[$st]} ms" | tee -a "$OUT/scene_times.txt"
done
echo "scene: Stage I + Stage II $(( ms[stage1] + ms[stage2] )) ms (target < 60 s)" | tee -a "$OUT/scene_times.txt"

if [[ $SMOKE == 1 ]]; then
  "$PY" benchmarks/gpu_rasterizer_vs_gsplat.py --smoke --out "$OUT/rasterizer_vs_gsplat.json" 2>&1 \
    | tee "$OUT/rasterizer.log"
else
  "$PY" benchmarks/gpu_rasterizer_vs_gsplat.py --n 30000 --width 320 --height 240 --cameras 40 \
    --out "$OUT/rasterizer_vs_gsplat.json" 2>&1 | tee "$OUT/rasterizer.log"
fi
echo "gpu_suite: $(( $(date +%s) - t0 )) s in all; results in $OUT"
