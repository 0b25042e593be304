#!/usr/bin/env bash
# Stop the single-node CI cluster that .ci/slurm/start.sh started: slurmd, slurmctld and its private munged.
# Only processes named in the run directory's pid files are signalled. Safe to run when nothing runs.
#
#   .ci/slurm/stop.sh            # keeps $SLURM_CI_DIR (logs) for inspection
#   .ci/slurm/stop.sh --purge    # also removes the run directory
set -euo pipefail

RUN_DIR="${SLURM_CI_DIR:-/tmp/slurm-ci}"
WAIT_S="${SLURM_CI_STOP_WAIT_S:-20}"

log() { echo "stop.sh: $*" >&2; }

# Send TERM to the pid in a pid file, wait (bounded) for the process to go, then KILL it.
stop_pidfile() {
    local name="$1" pidfile="$2" pid
    [ -s "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + WAIT_S))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) ignored TERM for ${WAIT_S}s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    log "stopped $name (pid $pid)"
}

if [ -f "$RUN_DIR/slurm.conf" ] && [ -s "$RUN_DIR/slurmctld.pid" ]; then
    # Cancel what is still queued or running, so no job step outlives the cluster.
    SLURM_CONF="$RUN_DIR/slurm.conf" scancel --full --quiet --state=PENDING >/dev/null 2>&1 || true
    SLURM_CONF="$RUN_DIR/slurm.conf" scancel --full --quiet --state=RUNNING >/dev/null 2>&1 || true
fi
stop_pidfile slurmd "$RUN_DIR/slurmd.pid"
stop_pidfile slurmctld "$RUN_DIR/slurmctld.pid"
stop_pidfile munged "$RUN_DIR/munge/munged.pid"

# slurmd's configless copy points into the run directory: remove the link so no client follows it.
if [ -L /run/slurm/conf ] && [[ "$(readlink /run/slurm/conf)" == "$RUN_DIR"/* ]]; then
    rm -f /run/slurm/conf
fi

if [ "${1:-}" = "--purge" ]; then
    rm -rf "$RUN_DIR"
    log "removed $RUN_DIR"
fi
