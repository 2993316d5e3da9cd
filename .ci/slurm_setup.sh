#!/usr/bin/env bash
# Install and start a real single-node SLURM cluster with accounting (slurmdbd + MariaDB), for CI.
#
# Debian 12 (bookworm) packages, run as root, no systemd: every daemon is started by hand and its PID
# kept in /run/tgpo-slurm/. Idempotent: a second run re-uses what is installed and running and only
# (re)starts what is missing. Writes /etc/slurm/slurm.conf (the jobstep plugin strips SLURM_CONF, so
# the config must live at the default path; see docs of snakemake-executor-plugin-slurm-jobstep 0.6.1).
#
# Checks at the end: `sinfo` shows the node idle, `sbatch --wait` runs a trivial job, `sacct` sees it.
#
# Usage:   sudo .ci/slurm_setup.sh            (install + start + check)
#          .ci/slurm_setup.sh --check         (only the checks)
#          .ci/slurm_setup.sh --stop          (stop the daemons this script started)
set -euo pipefail

STATE_DIR=/run/tgpo-slurm
LOG_DIR=/var/log/tgpo-slurm
CLUSTER=ci
PARTITION=debug
DB_NAME=slurm_acct_db
HOST_NAME=$(hostname -s)

fail() { echo "slurm_setup.sh: ERROR: $*" >&2; for f in "$LOG_DIR"/*.log; do [ -f "$f" ] && { echo "--- last lines of $f" >&2; tail -n 15 "$f" >&2; }; done; exit 1; }
say() { echo "slurm_setup.sh: $*"; }

wait_for() {  # wait_for <seconds> <description> <command...>
    local limit=$1 what=$2; shift 2
    for _ in $(seq 1 "$((limit * 2))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
    fail "$what did not come up within ${limit}s"
}

running() {  # running <name>: the daemon this script started is alive
    local pid_file="$STATE_DIR/$1.pid"
    [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

start_daemon() {  # start_daemon <name> <command...>: background, log to $LOG_DIR/<name>.log, pid file
    local name=$1; shift
    if running "$name"; then say "$name already running (pid $(cat "$STATE_DIR/$name.pid"))"; return; fi
    nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 &
    echo $! >"$STATE_DIR/$name.pid"
    say "started $name (pid $!)"
}

stop_all() {
    for name in slurmd slurmctld slurmdbd mariadbd munged; do
        if running "$name"; then kill "$(cat "$STATE_DIR/$name.pid")" && say "stopped $name"; fi
        rm -f "$STATE_DIR/$name.pid"
    done
}

install_packages() {
    local packages=(slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge
                    slurmdbd slurm-wlm-mysql-plugin mariadb-server)
    local missing=()
    for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -eq 0 ]; then say "packages already installed"; return; fi
    [ -r /etc/debian_version ] || fail "needs Debian 12 (bookworm) and apt-get; /etc/debian_version missing"
    say "installing ${missing[*]}"
    # Keep the package scripts from starting services (no systemd here): policy-rc.d exiting 101.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >"$LOG_DIR/apt.log" 2>&1 || { tail -n 20 "$LOG_DIR/apt.log" >&2; fail "apt-get install failed"; }
    rm -f /usr/sbin/policy-rc.d
}

write_configs() {
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    cat >/etc/slurm/slurm.conf <<EOF
# Written by tgpo-repro .ci/slurm_setup.sh: single-node CI cluster.
ClusterName=$CLUSTER
SlurmctldHost=$HOST_NAME(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$STATE_DIR/slurmctld.slurmpid
SlurmdPidFile=$STATE_DIR/slurmd.slurmpid
SlurmctldLogFile=$LOG_DIR/slurmctld.daemon.log
SlurmdLogFile=$LOG_DIR/slurmd.daemon.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
NodeName=$HOST_NAME NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST_NAME Default=YES MaxTime=INFINITE State=UP
EOF
    cat >/etc/slurm/slurmdbd.conf <<EOF
# Written by tgpo-repro .ci/slurm_setup.sh
AuthType=auth/munge
DbdAddr=127.0.0.1
DbdHost=$HOST_NAME
SlurmUser=root
PidFile=$STATE_DIR/slurmdbd.slurmpid
LogFile=$LOG_DIR/slurmdbd.daemon.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StorageUser=slurm
StoragePass=tgpo-ci
StorageLoc=$DB_NAME
EOF
    chmod 600 /etc/slurm/slurmdbd.conf
}

start_munge() {
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
    chmod 400 /etc/munge/munge.key
    chown -R root:root /etc/munge /run/munge /var/lib/munge /var/log/munge
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        start_daemon munged munged --foreground --force
        wait_for 20 "munged" sh -c 'munge -n | unmunge'
    else
        say "munged already answering"
    fi
}

start_mariadb() {
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    if [ ! -d /var/lib/mysql/mysql ]; then
        mariadb-install-db --user=root --datadir=/var/lib/mysql >"$LOG_DIR/mariadb-install.log" 2>&1 \
            || fail "mariadb-install-db failed (see $LOG_DIR/mariadb-install.log)"
    fi
    if ! mariadb-admin ping >/dev/null 2>&1; then
        start_daemon mariadbd mariadbd --user=root --datadir=/var/lib/mysql --bind-address=127.0.0.1
        wait_for 60 "MariaDB" mariadb-admin ping
    else
        say "MariaDB already answering"
    fi
    mariadb -e "CREATE DATABASE IF NOT EXISTS $DB_NAME;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'tgpo-ci';
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'tgpo-ci';
        GRANT ALL ON $DB_NAME.* TO 'slurm'@'localhost';
        GRANT ALL ON $DB_NAME.* TO 'slurm'@'127.0.0.1';" || fail "could not create database $DB_NAME / user slurm"
}

start_slurm() {
    if ! sacctmgr -n list cluster >/dev/null 2>&1; then
        start_daemon slurmdbd slurmdbd -D
        wait_for 60 "slurmdbd" sacctmgr -n list cluster
    else
        say "slurmdbd already answering"
    fi
    sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" \
        || sacctmgr -i add cluster "$CLUSTER" >/dev/null || fail "sacctmgr add cluster $CLUSTER failed"
    if ! scontrol ping 2>/dev/null | grep -q UP; then
        start_daemon slurmctld slurmctld -D -i
        wait_for 60 "slurmctld" sh -c 'scontrol ping | grep -q UP'
    else
        say "slurmctld already answering"
    fi
    if ! running slurmd; then
        start_daemon slurmd slurmd -D
    fi
    wait_for 60 "node $HOST_NAME (idle in sinfo)" \
        sh -c "sinfo -h -n $HOST_NAME -o %t | grep -Eq '^(idle|mix|alloc)'"
}

check() {
    say "sinfo:"; sinfo || fail "sinfo failed"
    local out; out=$(mktemp /tmp/tgpo-slurm-check.XXXXXX)
    sbatch --wait --quiet -p "$PARTITION" -t 1 -o "$out" --wrap 'echo slurm-ok on $(hostname)' \
        || fail "trivial 'sbatch --wait' job failed"
    grep -q slurm-ok "$out" || fail "trivial job ran but wrote no output ($out)"
    say "sbatch --wait: $(cat "$out")"; rm -f "$out"
    # slurmctld hands the record to slurmdbd asynchronously: on a loaded machine it lags the job's end
    sacct_completed() { sacct -X -n -P --format=JobID,State -S now-10minutes | tail -n 1 | grep -q COMPLETED; }
    wait_for 60 "the trivial job's COMPLETED record in sacct (accounting)" sacct_completed
    say "sacct sees the job: OK"
}

main() {
    [ "$(id -u)" -eq 0 ] || fail "must run as root (installs packages, starts daemons)"
    mkdir -p "$STATE_DIR" "$LOG_DIR"
    case "${1:-}" in
        --stop) stop_all; exit 0 ;;
        --check) check; exit 0 ;;
        "") ;;
        *) fail "unknown argument '$1' (expected nothing, --check or --stop)" ;;
    esac
    local t0=$SECONDS
    install_packages
    write_configs
    start_munge
    start_mariadb
    start_slurm
    check
    say "SLURM cluster '$CLUSTER' up in $((SECONDS - t0)) s (partition $PARTITION, node $HOST_NAME)"
}

main "$@"
