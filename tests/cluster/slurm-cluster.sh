#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on localhost, for testing the
# Snakemake SLURM profile against the real thing (Debian's Slurm 22.05).
#
#   slurm-cluster.sh install
#       install the Debian packages (slurmctld slurmd slurm-client munge) when
#       missing; exit 77 when this machine cannot run a test cluster (not
#       root, or the packages are missing and there is no apt-get)
#   slurm-cluster.sh start DIR [--owner-pid PID] [--max-seconds S] [--gpus N]
#       configure a cluster in the scratch folder DIR (munge key, slurm.conf,
#       state, spool, logs, PID files), stop any leftover cluster of an earlier
#       run first, start munged, slurmctld and slurmd, and wait until the node
#       is idle. A watchdog stops the cluster when PID exits or after S seconds
#       (default 1800), whichever comes first. N fake GPUs (0-4, default 2;
#       GRES backed by harmless character devices) let rules that request
#       GPUs be scheduled.
#       Clients use the cluster with: export SLURM_CONF=DIR/slurm.conf
#   slurm-cluster.sh stop [DIR]
#       cancel the cluster's jobs, then stop its processes (daemons, job
#       steps, job processes, watchdog); without DIR, every cluster of this
#       script still running on the machine
#   slurm-cluster.sh status [DIR]
#       print sinfo/squeue of the cluster; exit 1 when it is not running
#
# One cluster at a time per machine: the ports 6817-6818 are fixed, and
# `start` first stops a cluster left over by an earlier run. Callers that may
# run concurrently serialise on /run/augane-slurm-cluster/lock (flock); the
# pytest fixtures in tests/cluster/ do. Every process of a cluster carries
# AUGANE_SLURM_CLUSTER=DIR in its environment (the daemons from `start`, job
# processes from the task prolog): `stop` signals exactly those, by PID, and
# nothing else - never a SLURM that this script did not start.

set -euo pipefail

DIR=""
SELF="$(readlink -f "${BASH_SOURCE[0]}")"
REGISTRY_DIR="${AUGANE_SLURM_REGISTRY:-/run/augane-slurm-cluster}"
REGISTRY="$REGISTRY_DIR/current"
PORTS=(6817 6818)
PACKAGES=(slurmctld slurmd slurm-client munge)
EXIT_SKIP=77

log() { printf '[slurm-cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        log "skip: installing and running SLURM daemons needs root (uid $(id -u))"
        exit "$EXIT_SKIP"
    fi
}

have_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v munged >/dev/null
}

cmd_install() {
    # Running the daemons needs root too, so a non-root caller is told to
    # skip even where the packages are there.
    require_root
    if have_packages; then
        return 0
    fi
    if ! command -v apt-get >/dev/null; then
        log "skip: no apt-get on this machine, cannot install ${PACKAGES[*]}"
        exit "$EXIT_SKIP"
    fi
    local apt_log
    apt_log="$(mktemp)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$apt_log" 2>&1; then
        log "package lists look stale; running apt-get update"
        if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; } \
            >>"$apt_log" 2>&1; then
            tail -n 20 "$apt_log" >&2
            rm -f "$apt_log"
            die "apt-get could not install ${PACKAGES[*]} (output above)"
        fi
    fi
    rm -f "$apt_log"
    have_packages || die "packages installed but slurmctld/slurmd/sbatch/munged not on PATH"
}

# --- process bookkeeping -----------------------------------------------------

# PIDs of every process carrying AUGANE_SLURM_CLUSTER=$1 (or any value when $1
# is empty) in its environment, except this script and its ancestors.
cluster_pids() {
    local wanted="$1" exclude=" $$ " pid parent pattern file files
    pid=$$
    while [[ $pid -gt 1 ]]; do
        parent=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 1)
        exclude+="$parent "
        pid=$parent
    done
    if [[ -n $wanted ]]; then
        pattern="AUGANE_SLURM_CLUSTER=$wanted"
        files=$(grep -l -z -x -F -e "$pattern" /proc/[0-9]*/environ 2>/dev/null || true)
    else
        files=$(grep -l -z -e "^AUGANE_SLURM_CLUSTER=" /proc/[0-9]*/environ 2>/dev/null || true)
    fi
    for file in $files; do
        pid=${file#/proc/}
        pid=${pid%/environ}
        [[ $exclude == *" $pid "* ]] || echo "$pid"
    done
}

# Clusters (scratch folders) that still have processes on this machine.
running_clusters() {
    local pid
    for pid in $(cluster_pids ""); do
        { grep -z -o -e "^AUGANE_SLURM_CLUSTER=.*" "/proc/$pid/environ" | tr '\0' '\n' |
            sed 's/^AUGANE_SLURM_CLUSTER=//'; } 2>/dev/null || true
    done | sort -u
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

kill_and_wait() {
    local signal="$1" seconds="$2"
    shift 2
    local pids=("$@") alive deadline
    [[ ${#pids[@]} -eq 0 ]] && return 0
    kill "-$signal" "${pids[@]}" 2>/dev/null || true
    deadline=$((SECONDS + seconds))
    while ((SECONDS < deadline)); do
        alive=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive == 0)) && return 0
        sleep 0.2
    done
    return 1
}

stop_cluster() {
    local dir="$1" pids
    log "stopping the cluster in $dir"
    if [[ -f $dir/slurm.conf ]] && [[ -n $(cluster_pids "$dir") ]]; then
        # Cancel the jobs first so that slurmstepd ends their processes.
        SLURM_CONF="$dir/slurm.conf" timeout 10 scancel --quiet --user="$(id -un)" 2>/dev/null || true
        local deadline=$((SECONDS + 5))
        while ((SECONDS < deadline)) &&
            [[ -n $(SLURM_CONF="$dir/slurm.conf" timeout 5 squeue --noheader 2>/dev/null) ]]; do
            sleep 0.5
        done
    fi
    mapfile -t pids < <(cluster_pids "$dir")
    if ! kill_and_wait TERM 10 "${pids[@]}"; then
        mapfile -t pids < <(cluster_pids "$dir")
        log "processes ${pids[*]} ignored SIGTERM; sending SIGKILL"
        kill_and_wait KILL 5 "${pids[@]}" || die "could not stop processes ${pids[*]}"
    fi
    if [[ -f $REGISTRY ]] && [[ $(cat "$REGISTRY") == "$dir" ]]; then
        rm -f "$REGISTRY"
    fi
}

stop_leftovers() {
    local dir
    while read -r dir; do
        [[ -n $dir ]] || continue
        log "found a leftover cluster from an earlier run ($dir)"
        stop_cluster "$dir"
    done < <({ running_clusters; [[ -f $REGISTRY ]] && cat "$REGISTRY"; } | sort -u)
}

wait_ports_free() {
    local deadline=$((SECONDS + 3)) port busy
    while true; do
        busy=""
        for port in "${PORTS[@]}"; do
            port_in_use "$port" && busy+="$port "
        done
        [[ -z $busy ]] && return 0
        if ((SECONDS >= deadline)); then
            die "ports ${busy}are taken by a process that is not a test cluster of this" \
                "script (a SLURM installation of this machine?). Stop it, or run the" \
                "tests without the cluster: pytest -m 'not slurm'"
        fi
        sleep 0.5
    done
}

# --- configuration ------------------------------------------------------------

write_configs() {
    local dir="$1" gpus="$2" node cpus=16 memory=64000 gres=""
    node="$(hostname -s)"
    [[ $gpus =~ ^[0-4]$ ]] || die "--gpus must be 0 to 4 (fake devices), got $gpus"
    [[ $gpus -gt 0 ]] && gres="Gres=gpu:$gpus"
    mkdir -p "$dir"/{state,spool,log,munge}
    cat >"$dir/slurm.conf" <<EOF
# Single-node test cluster written by tests/cluster/slurm-cluster.sh.
ClusterName=augane-test
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${PORTS[0]}
SlurmdPort=${PORTS[1]}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No systemd, no cgroups here: track processes by parentage, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# The controller remembers finished jobs for MinJobAge seconds: squeue (the
# profile's status checks, and the tests reading the jobs' final states)
# sees them that long. A test run lasts minutes.
MinJobAge=3600
ReturnToService=2
TaskProlog=$dir/task-prolog.sh
# Advertise more than the machine has so that rules asking for more CPUs or
# memory than a laptop-sized box are still scheduled (nothing is enforced).
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory $gres State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    # Fake GPUs: Slurm schedules a GPU only with a device file, any character
    # device will do (task/none binds nothing). These are /dev/null, /dev/zero,
    # /dev/full and /dev/urandom under other names.
    local minors=(3 5 7 9) index files=""
    mkdir -p "$dir/dev"
    for ((index = 0; index < gpus; index++)); do
        mknod "$dir/dev/gpu$index" c 1 "${minors[index]}"
        files+="${files:+,}$dir/dev/gpu$index"
    done
    {
        echo "AutoDetect=off"
        [[ $gpus -gt 0 ]] && echo "NodeName=$node Name=gpu File=$files"
    } >"$dir/gres.conf"
    # Inside a job, Snakemake's job step drops every SLURM_* variable
    # (SLURM_CONF included) before it calls srun, which then looks for
    # /etc/slurm/slurm.conf. A shim first on the job's PATH hands srun this
    # cluster's configuration instead. The task prolog also marks every job
    # process as belonging to this cluster (lines "export NAME=value" reach
    # the task's environment).
    mkdir -p "$dir/bin"
    printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$dir/slurm.conf" "$(command -v srun)" \
        >"$dir/bin/srun"
    printf '#!/bin/sh\necho "export AUGANE_SLURM_CLUSTER=%s"\necho "export PATH=%s:$PATH"\n' \
        "$dir" "$dir/bin" >"$dir/task-prolog.sh"
    chmod 0755 "$dir/bin/srun" "$dir/task-prolog.sh"
    # munged checks that only the munge user can read its key and write its
    # folders.
    dd if=/dev/urandom bs=1 count=1024 of="$dir/munge/munge.key" status=none
    chown -R munge:munge "$dir/munge"
    chmod 0755 "$dir/munge"
    chmod 0400 "$dir/munge/munge.key"
}

wait_for() {
    local what="$1" seconds="$2"
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "$what did not come up within ${seconds}s; logs follow"
            tail -n 30 "$DIR"/log/*.log "$DIR"/munge/munged.log 2>/dev/null >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

node_idle() {
    [[ $(sinfo --noheader --Node --format=%t 2>/dev/null) == idle ]]
}

cmd_start() {
    local owner="" max_seconds=1800 gpus=2
    [[ $# -ge 1 ]] || die "usage: slurm-cluster.sh start DIR [--owner-pid PID] [--max-seconds S] [--gpus N]"
    DIR="$(readlink -m "$1")"
    shift
    while [[ $# -gt 0 ]]; do
        case "$1" in
        --owner-pid) owner="$2"; shift 2 ;;
        --max-seconds) max_seconds="$2"; shift 2 ;;
        --gpus) gpus="$2"; shift 2 ;;
        *) die "unknown option $1" ;;
        esac
    done
    require_root
    have_packages || die "SLURM is not installed; run: $SELF install"
    if [[ -e $DIR ]] && [[ -n $(ls -A "$DIR") ]]; then
        die "$DIR is not empty; give a fresh scratch folder"
    fi
    mkdir -p "$DIR" "$REGISTRY_DIR"
    # munged runs as the munge user and must reach its folder.
    if ! runuser -u munge -- test -x "$DIR"; then
        die "the munge user cannot enter $DIR; use a folder under a world-traversable parent (e.g. /tmp)"
    fi
    stop_leftovers
    wait_ports_free
    # From here on, a failure stops whatever was started.
    trap 'stop_cluster "$DIR"' EXIT
    echo "$DIR" >"$REGISTRY"
    write_configs "$DIR" "$gpus"

    export AUGANE_SLURM_CLUSTER="$DIR" SLURM_CONF="$DIR/slurm.conf"
    # The watchdog first: it stops whatever was started even if this script
    # dies half-way.
    if [[ -n $owner ]]; then
        setsid bash "$SELF" _watch "$DIR" "$owner" "$max_seconds" \
            </dev/null >"$DIR/log/watchdog.log" 2>&1 &
    else
        setsid bash "$SELF" _watch "$DIR" "" "$max_seconds" \
            </dev/null >"$DIR/log/watchdog.log" 2>&1 &
    fi

    runuser -u munge -- env AUGANE_SLURM_CLUSTER="$DIR" munged \
        --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/munged.seed"
    wait_for munged 10 test -S "$DIR/munge/munge.socket"
    slurmctld -i -f "$DIR/slurm.conf"
    wait_for slurmctld 20 scontrol ping
    slurmd -f "$DIR/slurm.conf"
    wait_for "the node" 30 node_idle
    trap - EXIT
    log "cluster up in $DIR (SLURM_CONF=$DIR/slurm.conf)"
}

cmd_watch() {
    local dir="$1" owner="$2" max_seconds="$3" deadline
    deadline=$((SECONDS + max_seconds))
    while ((SECONDS < deadline)); do
        if [[ -n $owner ]] && ! kill -0 "$owner" 2>/dev/null; then
            log "owner $owner exited"
            break
        fi
        sleep 1
    done
    ((SECONDS >= deadline)) && log "time limit of ${max_seconds}s reached"
    stop_cluster "$dir"
}

cmd_stop() {
    if [[ $# -ge 1 ]]; then
        stop_cluster "$(readlink -m "$1")"
    else
        stop_leftovers
    fi
}

cmd_status() {
    local dir="${1:-}"
    [[ -z $dir && -f $REGISTRY ]] && dir="$(cat "$REGISTRY")"
    [[ -n $dir && -f $dir/slurm.conf ]] || { log "no cluster is running"; return 1; }
    export SLURM_CONF="$dir/slurm.conf"
    sinfo && squeue
}

case "${1:-}" in
install) shift; cmd_install "$@" ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
status) shift; cmd_status "$@" ;;
_watch) shift; cmd_watch "$@" ;;
*) sed -n '2,27p' "$SELF" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
