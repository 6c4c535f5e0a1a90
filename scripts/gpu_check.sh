#!/usr/bin/env bash
# Everything GPU-related, in one run of at most ~8 minutes on one GPU:
#   setup  a virtual environment (reused if present; system packages if they suffice;
#          else scripts/bootstrap.sh)
#   env    GPU, driver, torch and CUDA versions
#   tests  tests/engine/test_gpu.py: AMP bf16 / fp16+GradScaler vs fp32, channels-last, no
#          host sync on the loader path (sync debug mode "error"), exact deterministic resume,
#          packed memory cap; tests/engine/test_gpu_graphs.py: the CUDA-graph step's 50-step
#          loss curve against the eager step's
#   bench  capstudy bench trial --baseline --cuda-graphs: B0 B-4 B-7 S-0 S-6 at 512 and
#          256 px, 1 and 4 packed, the step and evaluation breakdowns, and the old step
#          (per-image loss and post-processing, unfused optimizer, no graphs) in the same run
#   steps  benchmarks/step_paths.py: old vs new step per variant at 256 px, interleaved
#   determinism  the same for B-4 at 512 px with deterministic: true (what it costs)
#   study  a tiny study launched with resources {gpu: 0.25} (4 trials share the GPU)
#   report report.md + report.json (per-stage status and seconds, bench table, targets)
#
# Usage: bash scripts/gpu_check.sh [OUT_DIR] [--quick] [--cpu-dry] [--budget SECONDS]
#   OUT_DIR   where logs and reports go (default: $OUT if set, else gpu_check_out/)
#   --quick   a smaller bench (B-4, B-7 at 256 px, 1 and 4 packed) and a shorter study
#   --cpu-dry run every stage on the CPU at toy sizes (tests the script without a GPU)
#   --budget  seconds for the whole run (default 470); each stage gets its own timeout,
#             cut to what is left, so one slow stage cannot eat the others' time
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

OUTDIR=${OUT:-gpu_check_out}
QUICK=0
DRY=0
BUDGET=470
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --cpu-dry) DRY=1 ;;
    --budget) BUDGET=$2; shift ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    -*) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) OUTDIR=$1 ;;
  esac
  shift
done
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
STAGES="$OUTDIR/stages.jsonl"
: > "$STAGES"
START=$(date +%s)
# Data, caches and the tracking store live outside OUTDIR: they are large and not results.
export CAPSTUDY_HOME=${CAPSTUDY_HOME:-$(mktemp -d /tmp/capstudy-gpu-check-XXXXXX)}
export RAY_USAGE_STATS_ENABLED=0
export PYTHONUNBUFFERED=1
REPORT_RESERVE=15  # seconds kept back for writing the report
# A CPU dry run does toy work, but a 2-core machine imports torch and starts Ray slowly.
STAGE_SCALE=1
[ "$DRY" = 1 ] && STAGE_SCALE=3

say() { echo "[gpu_check $(( $(date +%s) - START ))s] $*"; }

# run_stage NAME TIMEOUT CMD...: run with a timeout cut to the budget left; log and record.
run_stage() {
  local name=$1 want=$(( $2 * STAGE_SCALE )); shift 2
  local left=$(( BUDGET - REPORT_RESERVE - ($(date +%s) - START) ))
  local limit=$(( want < left ? want : left ))
  local log="$OUTDIR/$name.log"
  if [ "$limit" -lt 5 ]; then
    say "$name: skipped (budget spent)"
    printf '{"stage":"%s","status":"skipped","rc":null,"seconds":0,"timeout":0,"log":"%s.log"}\n' \
      "$name" "$name" >> "$STAGES"
    return 0
  fi
  say "$name: starting (timeout ${limit}s, log $log)"
  local t0 rc status
  t0=$(date +%s)
  # A child bash, so the stage may be one of the exported functions below.
  timeout --kill-after=10 "$limit" bash -c '"$@"' _ "$@" > "$log" 2>&1
  rc=$?
  case $rc in 0) status=ok ;; 77) status=skipped ;; 124|137) status=timeout ;; *) status=failed ;; esac
  local secs=$(( $(date +%s) - t0 ))
  say "$name: $status (rc $rc, ${secs}s)"
  tail -n 5 "$log" | sed "s/^/    /"
  printf '{"stage":"%s","status":"%s","rc":%d,"seconds":%d,"timeout":%d,"log":"%s.log"}\n' \
    "$name" "$status" "$rc" "$secs" "$limit" "$name" >> "$STAGES"
  return 0
}

setup_venv() {
  if [ -x .venv/bin/capstudy ] && .venv/bin/python -c "import capstudy, torch" 2>/dev/null; then
    echo "reusing .venv"
  elif python3 -c "import torch, torchvision, timm, ray, mlflow, faster_coco_eval, pycocotools, pytest" 2>/dev/null; then
    echo "system python has the dependencies: venv with system site-packages"
    if ! { python3 -m venv --system-site-packages .venv &&
           .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .; }; then
      echo "that failed: falling back to scripts/bootstrap.sh"
      rm -rf .venv
      bash scripts/bootstrap.sh || return 1
    fi
  elif python3 -c "import torch, torchvision, numpy, PIL, yaml, typer, rich, pytest" 2>/dev/null &&
       ls "${GPU_WHEELS:-.gpuwheels}"/*.whl >/dev/null 2>&1; then
    # A GPU image with PyTorch but no package index (the device machines of this project):
    # a venv on the system's packages plus the few wheels carried along (timm pinned to the
    # golden counts' version, faster-coco-eval, pycocotools), capstudy itself without deps.
    # Ray and MLflow may be missing there: the stages that need them say so and skip.
    # The system python3 may itself be a venv, whose packages a --system-site-packages venv
    # would not see: install into it (a throw-away machine) and point .venv/bin at it.
    echo "system torch + carried wheels from ${GPU_WHEELS:-.gpuwheels}"
    local py
    py=$(command -v python3)
    "$py" -m pip install -q --no-deps --no-index "${GPU_WHEELS:-.gpuwheels}"/*.whl || return 1
    if ! "$py" -m pip install -q --no-deps --no-build-isolation -e .; then
      # An old setuptools cannot build the editable install: the checkout on sys.path does
      # for capstudy itself (launch/analysis are not needed by the GPU stages).
      echo "editable install failed: putting the checkout on sys.path with a .pth file"
      "$py" -c "import site, sys; open(site.getsitepackages()[0] + '/capstudy-checkout.pth', 'w').write(sys.argv[1] + '\n')" "$ROOT"
    fi
    mkdir -p .venv/bin
    printf '#!/bin/sh\nexec %s "$@"\n' "$py" > .venv/bin/python
    printf '#!/bin/sh\nexec %s -m capstudy.cli.main "$@"\n' "$py" > .venv/bin/capstudy
    chmod +x .venv/bin/python .venv/bin/capstudy
  else
    echo "running scripts/bootstrap.sh"
    bash scripts/bootstrap.sh || return 1
  fi
  .venv/bin/python -c "import capstudy, torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
}

env_info() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"
  .venv/bin/python - "$OUTDIR/env.json" <<'EOF'
import json, os, platform, sys
import torch
info = {
    "python": platform.python_version(),
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "cuda_available": torch.cuda.is_available(),
    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    if torch.cuda.is_available() else None,
    "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    "cpus": os.cpu_count(),
}
json.dump(info, open(sys.argv[1], "w"), indent=1)
print(json.dumps(info))
EOF
}

tiny_study() {
  local gpu=0.25 epochs=2 images=128 size=128
  [ "$DRY" = 1 ] && gpu=0 && images=32 && size=64 && epochs=1
  [ "$QUICK" = 1 ] && epochs=1
  cat > "$OUTDIR/tiny_gpu_study.yaml" <<EOF
# Written by scripts/gpu_check.sh: 4 trials that share one GPU (gpu: $gpu each).
study: {name: gpu_check_tiny, task: detection, metric: val/map50, mode: max}
fixed: {epochs: $epochs, image_size: $size, batch_size: 16, head_width: 16,
        max_train_images: $images, max_eval_images: 32}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [-4, -7]}
  init: {grid_search: [random]}
  train: {grid_search: [synth_a/rgb]}
  seed: {grid_search: [0, 1]}
  lr: {loguniform: [1.0e-3, 1.0e-2]}
evaluate: [synth_a/rgb, synth_a/ir]
tune: {samples_per_cell: 1, search: random, asha: {grace: 1, reduction: 3, scope: cell}}
resources: {cpu: 1, gpu: $gpu}
EOF
  if ! .venv/bin/python -c "import ray, mlflow, optuna" 2>/dev/null; then
    echo "SKIPPED: ray, mlflow or optuna is not installed on this machine (a launch needs them)"
    return 77  # the automake convention for "skipped"
  fi
  .venv/bin/capstudy launch --space "$OUTDIR/tiny_gpu_study.yaml"
}

export -f setup_venv env_info tiny_study
export OUTDIR DRY QUICK
say "output in $OUTDIR, budget ${BUDGET}s, quick=$QUICK cpu-dry=$DRY, CAPSTUDY_HOME=$CAPSTUDY_HOME"
run_stage setup 300 setup_venv
run_stage env 60 env_info

if [ "$DRY" = 1 ]; then
  BENCH=(--device cpu --variant B-7 --size 64 --images 16 --seconds 0.5 --threads 1 --baseline)
  STEPS=(--device cpu --variant B-7 --size 64 --rounds 1 --seconds 0.3)
elif [ "$QUICK" = 1 ]; then
  BENCH=(--variant B-4 --variant B-7 --size 256 --packed 1 --packed 4 --seconds 1 --images 256
         --baseline --cuda-graphs)
  STEPS=(--device cuda --variant B-7 --rounds 1 --seconds 1 --threads 0 --cuda-graphs)
else
  # 512 px first: the efficiency target is set there, and a cut-short run keeps those rows.
  # Every row fits the stage: 256 images per epoch, 1 s windows, 1 and 4 packed only (the
  # targets compare those two).
  BENCH=(--size 512 --size 256 --packed 1 --packed 4 --seconds 1 --images 256 --baseline
         --cuda-graphs)
  STEPS=(--device cuda --rounds 2 --seconds 1 --threads 0 --cuda-graphs)
fi
run_stage tests 150 .venv/bin/python -m pytest -q -p no:cacheprovider -m gpu -rs \
  tests/engine/test_gpu.py tests/engine/test_gpu_graphs.py --junitxml "$OUTDIR/tests.xml"
run_stage bench 240 .venv/bin/capstudy bench trial "${BENCH[@]}" --json "$OUTDIR/bench.json"
run_stage steps 45 .venv/bin/python benchmarks/step_paths.py "${STEPS[@]}"
if [ "$DRY" = 1 ]; then
  DET=(--device cpu --variant B-7 --size 64 --images 16 --seconds 0.5 --threads 1)
else
  DET=(--variant B-4 --size 512 --packed 0 --seconds 1.5 --images 512)
fi
run_stage determinism 60 .venv/bin/capstudy bench trial "${DET[@]}" --deterministic \
  --json "$OUTDIR/bench_deterministic.json"
run_stage study 120 tiny_study

say "report"
python3 scripts/gpu_check_report.py "$OUTDIR" || .venv/bin/python scripts/gpu_check_report.py "$OUTDIR"
say "done in $(( $(date +%s) - START ))s: $OUTDIR/report.md"
