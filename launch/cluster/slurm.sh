#!/usr/bin/env bash
# SLURM: start a Ray cluster across the allocated nodes, an MLflow server on the head, then
# run a study on it.
#
#   export MLFLOW_TRACKING_USERNAME=capstudy MLFLOW_TRACKING_PASSWORD=...   # 12+ characters
#   CAPSTUDY_SHARED=/shared/capstudy sbatch launch/cluster/slurm.sh full_grid
#
# The tracking server asks for a login (launch/cluster/mlflow-server.sh): sbatch passes the
# submitting shell's environment to the job, so the two variables reach the server (its admin
# user), the driver and, through srun, every node's `ray start`. They are never on a command
# line or in a file; keep them out of this script too.
# One Ray head on the first node, one worker per other node; the driver and the tracking
# server run on the head. What must be shared and what must not (docs/guide/scaling-out.md):
#   shared  ($CAPSTUDY_SHARED, every node, same path): the checkout with .venv
#           ($CAPSTUDY_ROOT), the datasets (data/), Ray Tune storage (ray_results/: checkpoints
#           restored on any node, --resume after a requeue) and MLflow artifacts (mlartifacts/);
#   node-local (never on NFS): CAPSTUDY_HOME (file locks: flock over NFS is unreliable),
#           CAPSTUDY_CACHE (memory-mapped image arrays: another node rebuilding an entry could
#           remove a folder this node maps), and the server's SQLite file (SQLite over NFS can
#           corrupt); the latter, with the server's users (mlflow-auth.db), is copied back
#           to the shared folder when the job ends, so a requeued job continues the same store.
#SBATCH --job-name=capstudy
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --gpus-per-task=1
#SBATCH --time=24:00:00
#SBATCH --output=capstudy-%j.log
#SBATCH --signal=B:TERM@120
set -euo pipefail

SPACE=${1:-full_grid}
SHARED=${CAPSTUDY_SHARED:?set CAPSTUDY_SHARED to a folder every node mounts}
: "${MLFLOW_TRACKING_USERNAME:?export MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD before sbatch}"
: "${MLFLOW_TRACKING_PASSWORD:?export MLFLOW_TRACKING_PASSWORD (12 or more characters) before sbatch}"
ROOT=${CAPSTUDY_ROOT:-$SLURM_SUBMIT_DIR}
LOCAL=${SLURM_TMPDIR:-/tmp}/capstudy-$USER
source "$ROOT/.venv/bin/activate"
export CAPSTUDY_DATA=$SHARED/data
export CAPSTUDY_HOME=$LOCAL/home        # node-local: locks (same path on every node)
export CAPSTUDY_CACHE=$LOCAL/cache      # node-local: decoded image arrays
export RAY_USAGE_STATS_ENABLED=0
export RAY_AUTH_MODE=token   # Ray 2.60: multi-node `ray start` needs it (DESIGN.md, known traps)
mkdir -p "$SHARED/ray_results" "$SHARED/mlartifacts" "$LOCAL"

nodes=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
head=${nodes[0]}
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head" hostname --ip-address | awk '{print $1}')
port=6379
mlflow_port=5000

# The tracking server: its stores on the head's local disk, restored from / saved to $SHARED.
state=$LOCAL/mlflow
mkdir -p "$state" && chmod 700 "$state"
for store in mlflow.db mlflow-auth.db; do
  if [ -f "$SHARED/$store" ]; then cp "$SHARED/$store" "$state/$store"; fi
done
save_store() {
  for store in mlflow.db mlflow-auth.db; do
    [ -f "$state/$store" ] || continue
    python - "$state/$store" "$SHARED/$store" <<'EOF'
import os, sqlite3, sys
os.umask(0o077)  # the copies hold every run and the users' password hashes
src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2] + ".tmp")
src.backup(dst)  # a consistent copy even while the server has the file open
dst.close()
EOF
    mv "$SHARED/$store.tmp" "$SHARED/$store"
  done
}
trap save_store EXIT
"$ROOT/launch/cluster/mlflow-server.sh" "$state" "$SHARED/mlartifacts" $mlflow_port \
  > "$LOCAL/mlflow-server.log" 2>&1 &

srun --nodes=1 --ntasks=1 -w "$head" \
  ray start --head --node-ip-address="$head_ip" --port=$port \
  --num-cpus="$SLURM_CPUS_PER_TASK" --num-gpus=1 --block &
sleep 20
for node in "${nodes[@]:1}"; do
  srun --nodes=1 --ntasks=1 -w "$node" \
    ray start --address="$head_ip:$port" \
    --num-cpus="$SLURM_CPUS_PER_TASK" --num-gpus=1 --block &
done
sleep 20

resume=()
[ -f "$SHARED/ray_results/$SPACE/capstudy_study.json" ] && resume=(--resume)
# The launcher checks these before anything starts: the server answers from every node and
# takes their login, the storage is readable on every node, and the nodes fit the study's
# resources.
capstudy launch --space "$SPACE" --address "$head_ip:$port" \
  --tracking-uri "http://$head_ip:$mlflow_port" --storage "$SHARED/ray_results" "${resume[@]}"
