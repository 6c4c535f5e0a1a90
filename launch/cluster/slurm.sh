#!/usr/bin/env bash
# SLURM: start a Ray cluster across the allocated nodes, then run a study on it.
#
#   sbatch launch/cluster/slurm.sh full_grid
#
# One Ray head on the first node, one worker per other node; the driver runs on the head
# with --address auto. Set CAPSTUDY_ROOT to a checkout with .venv built (bash
# scripts/bootstrap.sh) on a filesystem every node sees; Ray Tune storage and the MLflow
# store live there too, so --resume works after a requeue.
#SBATCH --job-name=capstudy
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --gpus-per-task=1
#SBATCH --time=24:00:00
#SBATCH --output=capstudy-%j.log
set -euo pipefail

SPACE=${1:-full_grid}
ROOT=${CAPSTUDY_ROOT:-$SLURM_SUBMIT_DIR}
source "$ROOT/.venv/bin/activate"
export CAPSTUDY_HOME=${CAPSTUDY_HOME:-$ROOT/.capstudy}   # shared: registry, mlflow.db, storage
export RAY_USAGE_STATS_ENABLED=0
export RAY_AUTH_MODE=token   # Ray 2.60: multi-node `ray start` needs it (DESIGN.md, known traps)

nodes=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
head=${nodes[0]}
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head" hostname --ip-address | awk '{print $1}')
port=6379

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
[ -f "$CAPSTUDY_HOME/ray_results/$SPACE/capstudy_study.json" ] && resume=(--resume)
capstudy launch --space "$SPACE" --address "$head_ip:$port" "${resume[@]}"
