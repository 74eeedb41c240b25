#!/usr/bin/env bash
# Create a Cloud TPU VM, install sgvs_jax on every worker, run a config on all workers.
#
#   launch/tpu_vm.sh create   # once
#   launch/tpu_vm.sh setup    # copy this checkout + data, pip install on all workers
#   launch/tpu_vm.sh run configs/tvsum_i3d.py runs/tvsum [--config.seed=1 ...]
#   launch/tpu_vm.sh delete
#
# Settings come from the environment: TPU_NAME, ZONE, ACCELERATOR_TYPE, RUNTIME_VERSION, DATA_DIR.
# Multi-host slices (e.g. v4-32) need --config.distributed=True: every worker runs the same
# command, jax.distributed.initialize() finds its peers, and the batch is sharded over all chips.
set -euo pipefail
TPU_NAME=${TPU_NAME:-sgvs}
ZONE=${ZONE:-us-central2-b}
ACCELERATOR_TYPE=${ACCELERATOR_TYPE:-v4-8}
RUNTIME_VERSION=${RUNTIME_VERSION:-tpu-ubuntu2204-base}
DATA_DIR=${DATA_DIR:-../shared/data}
REMOTE_DIR=sgvs_jax
ssh_all() { gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command "$1"; }

case "${1:-}" in
  create)
    gcloud compute tpus tpu-vm create "$TPU_NAME" --zone "$ZONE" \
      --accelerator-type "$ACCELERATOR_TYPE" --version "$RUNTIME_VERSION" ;;
  setup)
    root=$(cd "$(dirname "$0")/.." && pwd)
    tar -C "$root" --exclude .venv --exclude runs --exclude .git -czf /tmp/sgvs_jax.tgz .
    gcloud compute tpus tpu-vm scp /tmp/sgvs_jax.tgz "$TPU_NAME":/tmp/ --zone "$ZONE" --worker=all
    if [ -d "$DATA_DIR" ]; then
      tar -C "$DATA_DIR" -czf /tmp/sgvs_data.tgz .
      gcloud compute tpus tpu-vm scp /tmp/sgvs_data.tgz "$TPU_NAME":/tmp/ --zone "$ZONE" --worker=all
    fi
    ssh_all "mkdir -p $REMOTE_DIR shared/data && tar -C $REMOTE_DIR -xzf /tmp/sgvs_jax.tgz && \
      ( [ ! -f /tmp/sgvs_data.tgz ] || tar -C shared/data -xzf /tmp/sgvs_data.tgz ) && \
      cd $REMOTE_DIR && python3 -m venv .venv && .venv/bin/pip install -q -U pip && \
      .venv/bin/pip install -q -e . 'jax[tpu]' -f https://storage.googleapis.com/jax-releases/libtpu_releases.html" ;;
  run)
    config=${2:?config file}; workdir=${3:?workdir}; shift 3
    extra=$(printf ' %q' "$@")
    distributed=""
    [[ "$ACCELERATOR_TYPE" =~ -(8|4)$ ]] || distributed=" --config.distributed=True"
    ssh_all "cd $REMOTE_DIR && .venv/bin/python -m sgvs_jax.main --config $config --workdir $workdir \
      --config.data.shared_dir=../shared/data$distributed$extra 2>&1 | tee -a $workdir.log" ;;
  delete)
    gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone "$ZONE" --quiet ;;
  *)
    sed -n '2,13p' "$0"; exit 2 ;;
esac
