#!/usr/bin/env bash
# Start a throwaway single-node SLURM cluster on this machine (for CI and tests/test_slurm.py).
#
#   eval "$(.ci/slurm/start.sh)"     # as root; stdout is one line: export SLURM_CONF=<run dir>/slurm.conf
#   sinfo; sbatch --wrap hostname
#   .ci/slurm/stop.sh                 # stop.sh --purge also removes the run directory
#
# Everything of SLURM's lives under one run directory ($SLURM_CI_DIR, default /tmp/slurm-ci): slurm.conf,
# state, spool, logs and pid files; /etc/slurm is not written. Clients on this machine find the cluster
# through SLURM_CONF (the printed export line) or, without it, through /run/slurm/conf, the copy of the
# configuration that slurmd keeps in configless mode (which is how the plugin's job steps find it).
# Authentication: the munged on Debian's default socket; if none runs, one is started (and stop.sh stops it).
# Talking is over loopback: the node's address is 127.0.0.1 and NoInAddrAny makes slurmd and srun bind to
# it (slurmctld has no such option in 22.05: it listens on its port, 6817, on all addresses).
#
# Needs root and Debian's `slurm-wlm` + `munge` (apt-get install -y slurm-wlm munge).
# Idempotent: when the cluster already answers, it only prints the export line again.
set -euo pipefail

RUN_DIR="${SLURM_CI_DIR:-/tmp/slurm-ci}"
CONF="$RUN_DIR/slurm.conf"
MUNGE_DIR="$RUN_DIR/munge"
# Debian's defaults: slurm and munge clients use them without options.
MUNGE_SOCKET=/run/munge/munge.socket.2
MUNGE_KEY=/etc/munge/munge.key
WAIT_S="${SLURM_CI_WAIT_S:-60}"
CLUSTER_NAME="${SLURM_CI_CLUSTER:-ci}"
CTLD_PORT="${SLURM_CI_CTLD_PORT:-6817}"

die() { echo "start.sh: error: $*" >&2; exit 1; }
log() { echo "start.sh: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "must run as root: slurmd starts each job as the user who submitted it"
for tool in munged mungekey slurmctld slurmd sinfo scontrol; do
    command -v "$tool" >/dev/null || die "'$tool' not found: install with 'apt-get install -y slurm-wlm munge'"
done

# SLURM clients read /etc/slurm/slurm.conf before slurmd's configless copy: a machine with its own SLURM
# configuration is a real cluster node, and jobs there would not reach this cluster.
[ ! -e /etc/slurm/slurm.conf ] || die "/etc/slurm/slurm.conf exists: this machine has its own SLURM; use it instead"

# Process alive according to its pid file (a daemon from an earlier run of this script).
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { SLURM_CONF="$CONF" sinfo --noheader --Node --format=%t 2>/dev/null | head -n 1; }

print_export() { echo "export SLURM_CONF=$CONF"; }

node_takes_jobs() { case "$1" in idle | mix | alloc) return 0 ;; *) return 1 ;; esac; }

if [ -f "$CONF" ] && pid_alive "$RUN_DIR/slurmctld.pid" && pid_alive "$RUN_DIR/slurmd.pid"; then
    state="$(node_state || true)"
    if node_takes_jobs "$state"; then
        log "already running (node $state); run dir $RUN_DIR"
        print_export
        exit 0
    fi
fi

mkdir -p "$RUN_DIR"/{state,spool,log} "$MUNGE_DIR"
chmod 0755 "$RUN_DIR"
chmod 0700 "$MUNGE_DIR"

# --- munge -------------------------------------------------------------------------------------------------
# The job step that the Snakemake plugin starts inside each job (`srun`) runs with SLURM_* variables
# removed, so it finds this cluster the way a configless compute node does: through slurmd's cached
# copy, /run/slurm/conf/slurm.conf. slurmd fetches that copy from slurmctld before it has read any
# slurm.conf, so it authenticates through the default munge socket: reuse a munged that already serves
# it, else start one on it (with the system's key, created if absent) and stop it again in stop.sh.
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "using the munged already running on $MUNGE_SOCKET"
else
    [ -s "$MUNGE_KEY" ] || { mkdir -p "$(dirname "$MUNGE_KEY")"; mungekey --create --keyfile="$MUNGE_KEY"; }
    mkdir -p "$(dirname "$MUNGE_SOCKET")"
    if id munge >/dev/null 2>&1; then
        chown munge:munge "$(dirname "$MUNGE_SOCKET")"
    fi
    chmod 0755 "$(dirname "$MUNGE_SOCKET")"
    munged --force --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" \
        --pid-file="$MUNGE_DIR/munged.pid" --log-file="$RUN_DIR/log/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" \
        || die "munged failed to start; see $RUN_DIR/log/munged.log"
fi
munge -n | unmunge >/dev/null || die "munge round trip failed on $MUNGE_SOCKET; see $RUN_DIR/log/munged.log"

# --- slurm.conf: this machine as the one node, its real CPUs and memory -------------------------------
HOST="$(hostname -s)"
# `slurmd -C` prints e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1
# RealMemory=24105": keep everything after the node name so the hardware description matches exactly.
HARDWARE="$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')"
case "$HARDWARE" in *CPUs=*RealMemory=*) ;; *) die "could not parse 'slurmd -C' output: $HARDWARE" ;; esac

cat >"$CONF.tmp" <<EOF
# Written by .ci/slurm/start.sh: single-node CI cluster on loopback. Do not edit; re-run start.sh.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=${SLURM_CI_SLURMD_PORT:-6818}
CommunicationParameters=NoInAddrAny
# slurmd fetches this file from slurmctld and caches it in /run/slurm/conf for clients on the node.
SlurmctldParameters=enable_configless
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$RUN_DIR/state
SlurmdSpoolDir=$RUN_DIR/spool
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$RUN_DIR/log/slurmctld.log
SlurmdLogFile=$RUN_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups here (containers, gVisor): track job processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
# Cores and memory are consumable, as on a real cluster: --cpus-per-task and --mem must fit the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# No slurmdbd: no accounting storage, no job completion log (so 'sacct' does not work; use squeue).
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
# Finished jobs stay visible to 'squeue --states=all' for an hour: the Snakemake SLURM plugin's squeue
# status command needs MinJobAge >= 3 x its first status-check delay, and tests read the job history.
MinJobAge=3600
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 NodeHostname=$(hostname) $HARDWARE State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.tmp" "$CONF"
export SLURM_CONF="$CONF"

# --- daemons --------------------------------------------------------------------------------------------
# A half-started cluster (e.g. slurmd died) is restarted from clean state: this is a disposable CI cluster.
if pid_alive "$RUN_DIR/slurmctld.pid"; then
    scontrol reconfigure >/dev/null 2>&1 || true
else
    slurmctld -c -f "$CONF" || die "slurmctld failed to start; see $RUN_DIR/log/slurmctld.log"
fi
if ! pid_alive "$RUN_DIR/slurmd.pid"; then
    slurmd --conf-server "127.0.0.1:$CTLD_PORT" || die "slurmd failed to start; see $RUN_DIR/log/slurmd.log"
fi

# --- wait until the node takes jobs ------------------------------------------------------------------------
deadline=$((SECONDS + WAIT_S))
state=""
while [ $SECONDS -lt $deadline ]; do
    state="$(node_state || true)"
    node_takes_jobs "$state" && break
    case "$state" in
        down* | drain* | fail*)
            # A node that slurmctld remembered as down is put back (ReturnToService covers fresh starts).
            scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
if ! node_takes_jobs "$state"; then
    tail -n 20 "$RUN_DIR/log/slurmctld.log" "$RUN_DIR/log/slurmd.log" >&2 2>/dev/null || true
    die "node '$HOST' not idle after ${WAIT_S}s (state: '${state:-no answer}'); logs in $RUN_DIR/log"
fi
log "SLURM cluster '$CLUSTER_NAME' up: node $HOST ($HARDWARE) is $state; run dir $RUN_DIR"
print_export
