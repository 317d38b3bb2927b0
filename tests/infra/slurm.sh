#!/usr/bin/env bash
# A real single-node SLURM for the test suite: installed and started by this script, no systemd.
#
#   slurm.sh install            install slurmctld slurmd slurm-client munge (Debian, root) if missing
#   slurm.sh up     [STATE_DIR] write slurm.conf into STATE_DIR, start munged, slurmctld, slurmd;
#                               wait for an idle node; last stdout line: export SLURM_CONF=...
#   slurm.sh down   [STATE_DIR] cancel all jobs, stop the daemons, leave no process behind
#   slurm.sh status [STATE_DIR] exit 0 if up
#
# STATE_DIR defaults to ${FLOWBRIDGE_SLURM_DIR:-/tmp/flowbridge-slurm}. Everything the daemons
# write (config, logs, pid files, spool, state save, munge socket) lives there.
# Environment: FLOWBRIDGE_SLURM_CPUS   CPUs the node advertises (default: max(hardware, 4))
#              FLOWBRIDGE_SLURM_TIMEOUT seconds to wait for start/stop steps (default 30)
# Messages go to stderr; stdout carries only the export line of `up`.
set -euo pipefail

TIMEOUT="${FLOWBRIDGE_SLURM_TIMEOUT:-30}"

log() { echo "slurm.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

set_paths() {
    STATE_DIR="${1:-${FLOWBRIDGE_SLURM_DIR:-/tmp/flowbridge-slurm}}"
    STATE_DIR="$(realpath -m "$STATE_DIR")"
    CONF="$STATE_DIR/slurm.conf"
    MUNGE_DIR="$STATE_DIR/munge"
    MUNGE_SOCKET="$MUNGE_DIR/munge.socket"
    MUNGE_PID="$MUNGE_DIR/munged.pid"
    CTLD_PID="$STATE_DIR/slurmctld.pid"
    SLURMD_PID="$STATE_DIR/slurmd.pid"
    export SLURM_CONF="$CONF"
}

# --- process helpers -------------------------------------------------------------------------

# alive PID COMM: running (not a zombie) and named COMM. kill -0 also succeeds on zombies.
alive() {
    local pid="$1" comm="$2" stat state
    [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$comm" ]] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    state="${stat##*) }"; state="${state%% *}"
    [[ "$state" != Z && "$state" != X ]]
}

pid_of() { [[ -r "$1" ]] && tr -dc '0-9' <"$1" || true; }

# Daemons of ANY instance on this host (the ports are fixed, so only one can run at a time).
foreign_daemons() {
    local p comm
    for p in /proc/[0-9]*; do
        comm="$(cat "$p/comm" 2>/dev/null)" || continue
        case "$comm" in slurmctld|slurmd) alive "${p#/proc/}" "$comm" && echo "${p#/proc/}:$comm" ;; esac
    done
    return 0
}

# PIDs of slurm processes started from our config (daemons and slurmstepd inherit SLURM_CONF).
our_pids() {
    local p pid comm
    for p in /proc/[0-9]*; do
        pid="${p#/proc/}"
        comm="$(cat "$p/comm" 2>/dev/null)" || continue
        case "$comm" in
            slurmctld|slurmscriptd|slurmd|slurmstepd)
                alive "$pid" "$comm" && { tr '\0' '\n' <"$p/environ"; } 2>/dev/null \
                    | grep -xF "SLURM_CONF=$CONF" >/dev/null && echo "$pid:$comm" ;;
            munged)
                alive "$pid" "$comm" && { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null \
                    | grep -F "$MUNGE_SOCKET" >/dev/null && echo "$pid:$comm" ;;
        esac
    done
    return 0
}

# stop PID COMM: TERM, wait until really gone (bounded), then KILL.
stop_pid() {
    local pid="$1" comm="$2" i
    alive "$pid" "$comm" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        alive "$pid" "$comm" || return 0
        sleep 0.1
    done
    log "$comm ($pid) ignored TERM for ${TIMEOUT}s; killing"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" "$comm" || return 0; sleep 0.1; done
    die "$comm ($pid) survived KILL"
}

fail_with_logs() {
    log "ERROR: $*"
    local f
    for f in "$STATE_DIR/slurmctld.log" "$STATE_DIR/slurmd.log" "$MUNGE_DIR/munged.log"; do
        [[ -r "$f" ]] || continue
        echo "----- tail $f -----" >&2
        tail -n 25 "$f" >&2
    done
    exit 1
}

# --- subcommands -----------------------------------------------------------------------------

cmd_install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return 0
    fi
    [[ "$(id -u)" == 0 ]] || die "install needs root"
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; own_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >&2
    if ((own_policy)); then rm -f "$policy"; trap - EXIT; fi
    command -v slurmctld >/dev/null || die "slurmctld still missing after install"
}

write_conf() {
    local host="$1" hw cpus sockets cores threads node_hw
    hw="$(slurmd -C 2>/dev/null | head -n1)" || true
    [[ "$hw" == NodeName=* ]] || die "slurmd -C printed no hardware line: $hw"
    cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
    local want="${FLOWBRIDGE_SLURM_CPUS:-$(( cpus > 4 ? cpus : 4 ))}"
    if [[ "$want" == "$cpus" ]]; then
        # the hardware line as slurmd -C prints it, minus NodeName and RealMemory
        node_hw="$(sed -e 's/^NodeName=[^ ]* //' -e 's/ *RealMemory=[0-9]*//' <<<"$hw")"
    else
        node_hw="CPUs=$want Boards=1 SocketsPerBoard=1 CoresPerSocket=$want ThreadsPerCore=1"
    fi
    mkdir -p "$STATE_DIR/state" "$STATE_DIR/spool"
    cat >"$CONF" <<EOF
# generated by tests/infra/slurm.sh -- single-node test cluster
ClusterName=flowbridge
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
EnforcePartLimits=ALL
ReturnToService=2
MinJobAge=30
SlurmdParameters=config_overrides
MailProg=/bin/true
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$STATE_DIR/slurmctld.log
SlurmdLogFile=$STATE_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host NodeAddr=127.0.0.1 $node_hw RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

is_up() {
    alive "$(pid_of "$MUNGE_PID")" munged && alive "$(pid_of "$CTLD_PID")" slurmctld \
        && alive "$(pid_of "$SLURMD_PID")" slurmd && timeout 10 scontrol ping 2>/dev/null | grep UP >/dev/null
}

cmd_status() { set_paths "${1:-}"; is_up; }

cmd_up() {
    set_paths "${1:-}"
    command -v slurmctld >/dev/null || die "slurmctld not installed; run: $0 install (as root)"
    [[ "$(id -u)" == 0 ]] || die "up needs root"
    if is_up; then
        log "already up ($STATE_DIR)"
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    # half up (a daemon died)? clean it away first
    cmd_down_quiet
    local other
    other="$(foreign_daemons | tr "\n" " ")"
    [[ -z "$other" ]] || die "other slurm daemons are running ($other); stop them first (slurm.sh down THEIR_STATE_DIR)"

    local host i
    host="$(hostname -s)"
    mkdir -p "$STATE_DIR"
    rm -rf "$STATE_DIR/state" "$STATE_DIR/spool" "$MUNGE_DIR"
    rm -f "$STATE_DIR"/*.log "$CTLD_PID" "$SLURMD_PID"
    write_conf "$host"

    # munged: own socket, pid, log and seed under STATE_DIR; key from the package
    install -d -o munge -g munge -m 0700 "$MUNGE_DIR"
    runuser -u munge -- munged --force --socket="$MUNGE_SOCKET" --pid-file="$MUNGE_PID" \
        --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
        || fail_with_logs "munged failed to start"
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        munge -n --socket="$MUNGE_SOCKET" 2>/dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1 && break
        sleep 0.1
    done
    ((i < TIMEOUT * 10)) || fail_with_logs "munge did not answer within ${TIMEOUT}s"

    slurmctld -c -f "$CONF" || fail_with_logs "slurmctld failed to start"
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        scontrol ping 2>/dev/null | grep UP >/dev/null && break
        sleep 0.1
    done
    ((i < TIMEOUT * 10)) || fail_with_logs "slurmctld did not answer scontrol ping within ${TIMEOUT}s"

    slurmd -f "$CONF" -N "$host" || fail_with_logs "slurmd failed to start"
    local state=""
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        state="$(sinfo -h -n "$host" -o %T 2>/dev/null || true)"
        [[ "$state" == idle ]] && break
        sleep 0.1
    done
    [[ "$state" == idle ]] || fail_with_logs "node $host not idle within ${TIMEOUT}s (sinfo says '${state}')"
    # slurmctld runs its first scheduling pass ~3 s after start; a job submitted before waits for it.
    # Wait here so the first job of a test starts as fast as later ones (~1 s).
    for ((i = 0; i < 100; i++)); do
        grep -q '^\[[^]]*\] SchedulerParameters=' "$STATE_DIR/slurmctld.log" 2>/dev/null && break
        sleep 0.1
    done
    ((i < 100)) || log "warning: no first scheduling pass logged after 10 s; going on"
    log "up: node $host idle, partition debug ($STATE_DIR)"
    echo "export SLURM_CONF=$CONF"
}

cmd_down_quiet() {
    local pid i ids
    # cancel every job, wait until none is pending/running/completing
    if alive "$(pid_of "$CTLD_PID")" slurmctld && timeout 10 scontrol ping 2>/dev/null | grep UP >/dev/null; then
        ids="$(squeue -h -o %A 2>/dev/null || true)"
        if [[ -n "$ids" ]]; then
            # shellcheck disable=SC2086
            scancel $ids 2>/dev/null || true
            for ((i = 0; i < TIMEOUT * 10; i++)); do
                [[ -z "$(squeue -h -o %A 2>/dev/null || true)" ]] && break
                sleep 0.1
            done
            ((i < TIMEOUT * 10)) || log "jobs still listed after ${TIMEOUT}s; stopping anyway"
        fi
    fi
    stop_pid "$(pid_of "$SLURMD_PID")" slurmd
    stop_pid "$(pid_of "$CTLD_PID")" slurmctld
    stop_pid "$(pid_of "$MUNGE_PID")" munged
    # leftovers of this instance (slurmstepd, a daemon whose pid file went missing)
    local entry
    for entry in $(our_pids); do stop_pid "${entry%%:*}" "${entry#*:}"; done
    rm -f "$SLURMD_PID" "$CTLD_PID" "$MUNGE_PID"
}

cmd_down() {
    set_paths "${1:-}"
    cmd_down_quiet
    local left
    left="$(our_pids)"
    [[ -z "$left" ]] || die "processes left behind: $left"
    log "down ($STATE_DIR)"
}

case "${1:-}" in
    install) cmd_install ;;
    up) cmd_up "${2:-}" ;;
    down) cmd_down "${2:-}" ;;
    status) cmd_status "${2:-}" ;;
    *) echo "usage: $0 {install|up|down|status} [STATE_DIR]" >&2; exit 2 ;;
esac
