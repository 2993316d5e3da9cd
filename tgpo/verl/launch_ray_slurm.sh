#!/usr/bin/env bash
# Start a Ray cluster over the nodes of the current SLURM job, run the verl driver on the head node,
# and stop Ray when the driver ends (success, failure or signal).
#
# Usage (inside a SLURM job, e.g. a Snakemake rule with resources nodes=N, tasks=N, mpi="srun"):
#   tgpo/verl/launch_ray_slurm.sh --nodes N --gpus-per-node G --cpus-per-node C [--port 6379] [--dry-run] \
#       -- python -m verl.trainer.main_ppo <overrides> trainer.nnodes=N trainer.n_gpus_per_node=G
#
# Why not verl's examples/slurm script: snakemake-executor-plugin-slurm-jobstep 0.6.1 removes every
# SLURM_* variable but SLURM_JOB_ID (and a few others) before the rule runs, so SLURM_JOB_NODELIST,
# SLURM_NNODES and SLURM_GPUS_PER_NODE are gone. The nodelist comes from `squeue -j $SLURM_JOB_ID`,
# the counts from the arguments (the rule passes {resources.nodes} etc.). The node list is a real
# bash array (verl issue #548: `nodes_array=("$nodes")` puts every node in element 0).
#
# With --nodes 1 no Ray cluster is started: verl's driver starts a local Ray itself.
# With --dry-run the plan (nodes, head, each srun command, the driver) is printed and nothing runs.
set -euo pipefail

die() { echo "launch_ray_slurm.sh: ERROR: $*" >&2; exit 2; }
log() { echo "launch_ray_slurm.sh: $*" >&2; }

NODES="" GPUS_PER_NODE="" CPUS_PER_NODE="" PORT=6379 DRY_RUN=0 WAIT_S=${TGPO_RAY_WAIT_S:-300}
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) NODES=$2; shift 2 ;;
        --gpus-per-node) GPUS_PER_NODE=$2; shift 2 ;;
        --cpus-per-node) CPUS_PER_NODE=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --) shift; break ;;
        *) die "unknown argument '$1' (expected --nodes, --gpus-per-node, --cpus-per-node, --port, --dry-run, -- <driver>)" ;;
    esac
done
[ $# -gt 0 ] || die "no driver command after '--'"
for v in NODES GPUS_PER_NODE CPUS_PER_NODE; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-') must be a positive integer, got '${!v}'"
done

if [ "$NODES" -eq 1 ]; then
    log "1 node: running the driver directly (verl starts a local Ray)"
    if [ "$DRY_RUN" -eq 1 ]; then echo "driver: $*"; exit 0; fi
    exec "$@"
fi

[ -n "${SLURM_JOB_ID:-}" ] || die "SLURM_JOB_ID is not set: run inside a SLURM allocation (sbatch/salloc or the Snakemake slurm executor)"

# --- node list from the scheduler (SLURM_JOB_NODELIST may have been stripped) ---
compact_nodelist=$(squeue -h -j "$SLURM_JOB_ID" -o %N) || die "squeue -j $SLURM_JOB_ID failed"
mapfile -t NODE_NAMES < <(scontrol show hostnames "$compact_nodelist")
[ "${#NODE_NAMES[@]}" -eq "$NODES" ] \
    || die "job $SLURM_JOB_ID has ${#NODE_NAMES[@]} node(s) ($compact_nodelist) but --nodes $NODES was given"
HEAD=${NODE_NAMES[0]}

if [ "$DRY_RUN" -eq 1 ]; then
    HEAD_IP=$HEAD
else
    HEAD_IP=$(srun --overlap --nodes=1 --ntasks=1 -w "$HEAD" hostname --ip-address | awk '{print $1}')
    [ -n "$HEAD_IP" ] || die "could not resolve the IP address of head node $HEAD"
    if [[ "$HEAD_IP" == *:* ]]; then HEAD_IP="[$HEAD_IP]"; fi  # IPv6
fi
ADDRESS="$HEAD_IP:$PORT"
log "job $SLURM_JOB_ID: $NODES nodes (${NODE_NAMES[*]}), head $HEAD at $ADDRESS"

head_cmd=(srun --overlap --nodes=1 --ntasks=1 -w "$HEAD" ray start --head --node-ip-address="$HEAD_IP"
          --port="$PORT" --num-cpus="$CPUS_PER_NODE" --num-gpus="$GPUS_PER_NODE" --block)
worker_cmd() { echo srun --overlap --nodes=1 --ntasks=1 -w "$1" ray start --address="$ADDRESS" \
                    --num-cpus="$CPUS_PER_NODE" --num-gpus="$GPUS_PER_NODE" --block; }

if [ "$DRY_RUN" -eq 1 ]; then
    echo "head: ${head_cmd[*]}"
    for node in "${NODE_NAMES[@]:1}"; do echo "worker: $(worker_cmd "$node")"; done
    echo "wait: $NODES alive Ray nodes at $ADDRESS"
    echo "driver: RAY_ADDRESS=$ADDRESS $*"
    exit 0
fi

BACKGROUND_PIDS=()
stop_ray() {
    local rc=$?
    log "stopping Ray (driver exit status $rc)"
    for node in "${NODE_NAMES[@]}"; do
        srun --overlap --nodes=1 --ntasks=1 -w "$node" ray stop --force >/dev/null 2>&1 || true
    done
    for pid in "${BACKGROUND_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    exit "$rc"
}
trap stop_ray EXIT
trap 'exit 143' TERM INT

alive_nodes() {
    python - "$ADDRESS" <<'EOF' 2>/dev/null
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(sum(1 for node in ray.nodes() if node["Alive"]))
EOF
}
wait_for_nodes() {  # wait_for_nodes <count>
    local deadline=$((SECONDS + WAIT_S)) n=0
    while [ "$SECONDS" -lt "$deadline" ]; do
        n=$(alive_nodes || echo 0)
        [ "${n:-0}" -ge "$1" ] && { log "$n/$NODES Ray nodes alive"; return 0; }
        sleep 5
    done
    die "only ${n:-0} of $1 Ray nodes joined within ${WAIT_S}s (see the srun output above)"
}

"${head_cmd[@]}" &
BACKGROUND_PIDS+=($!)
wait_for_nodes 1
for node in "${NODE_NAMES[@]:1}"; do
    $(worker_cmd "$node") &
    BACKGROUND_PIDS+=($!)
done
wait_for_nodes "$NODES"

log "driver: $*"
export RAY_ADDRESS="$ADDRESS"
"$@"
