#!/usr/bin/env bash
# `make bench`: the load scenarios of docs/BENCHMARKS.md on a private stack.
#
#   scripts/bench.sh [SCENARIO...]   default: a b c (also "a,b")
#     a   Dodo's 2020 scale: 600 pizzerias x 5 tablets polling every 10 s
#     b   ten times that: 6000 pizzerias
#     c   the sync worker draining a backlog of 1,000,000 tracker events
#
# Starts PostgreSQL (127.0.0.1:55434, fsync on, pg_stat_statements loaded) and
# RabbitMQ (127.0.0.1:55674) in BENCH_DIR, builds the release binaries,
# migrates, starts auth and devices (the tracker checks every caller against
# them), tracker and sync-worker, creates a chain admin for loadgen (a fresh
# login and random password per run; the password only in a 0600 file), runs
# the scenarios with target/release/loadgen, then stops the services and the
# stack. Everything targets 127.0.0.1 only, and every scenario is bounded in
# time.
#
# Environment:
#   BENCH_DURATION=60s           load time of scenarios a and b (15s for a quick check)
#   BENCH_ORDERS_PER_MINUTE=1    orders per pizzeria per minute in a and b
#   BENCH_SESSIONS=100           staff sessions loadgen deals out to the tablets
#                                (one shared session expires in the tracker's cache
#                                for every tablet at once; see loadgen/src/session.rs)
#   BENCH_BACKLOG_EVENTS=1000000 events in scenario c
#   BENCH_DIR=.stack/bench       stack data; results go to BENCH_DIR/results/<time>/
#   BENCH_TRACKER_PORT=58081     service ports: not 8081-8084, so a `make run`
#   BENCH_SYNC_WORKER_PORT=58082   can stay up beside a benchmark
#   BENCH_AUTH_PORT=58083
#   BENCH_DEVICES_PORT=58084
#   BENCH_SKIP_BUILD=1           use the binaries in target/release as they are
#   BENCH_KEEP_STACK=1           leave PostgreSQL + RabbitMQ running afterwards
#   BENCH_KEEP_DATA=1            keep the tracker database of the last run (it is
#                                dropped by default, so queues start empty)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"
cd "$ROOT"

BENCH_DIR=$(abs_path "${BENCH_DIR:-$ROOT/.stack/bench}")
PG_PORT=55434
AMQP_PORT=55674
TRACKER_PORT=${BENCH_TRACKER_PORT:-58081}
SYNC_WORKER_PORT=${BENCH_SYNC_WORKER_PORT:-58082}
AUTH_PORT=${BENCH_AUTH_PORT:-58083}
DEVICES_PORT=${BENCH_DEVICES_PORT:-58084}
DURATION=${BENCH_DURATION:-60s}
ORDERS_PER_MINUTE=${BENCH_ORDERS_PER_MINUTE:-1}
SESSIONS=${BENCH_SESSIONS:-100}
BACKLOG_EVENTS=${BENCH_BACKLOG_EVENTS:-1000000}
BIN_DIR=$ROOT/target/release
EXCHANGE=kitchen
# "a b", "a,b" and "a" "b" all work.
read -r -a SCENARIOS <<<"${*//,/ }"
((${#SCENARIOS[@]})) || SCENARIOS=(a b c)
for s in "${SCENARIOS[@]}"; do
    [[ $s == [abc] ]] || die "unknown scenario '$s' (expected a, b or c)"
done

RESULTS=$BENCH_DIR/results/$(date -u +%Y%m%dT%H%M%SZ)
LOG_DIR=$BENCH_DIR/logs
mkdir -p "$RESULTS" "$LOG_DIR"
declare -A PIDS=()

# ------------------------------------------------------------- services ---

start_service() {
    local name=$1 port=$2 pid
    shift 2
    port_open "$port" && die "port $port is in use; set BENCH_TRACKER_PORT / BENCH_SYNC_WORKER_PORT / BENCH_AUTH_PORT / BENCH_DEVICES_PORT"
    log "starting $name on 127.0.0.1:$port (log: $LOG_DIR/$name.log)"
    APP_APPLICATION__PORT=$port setsid "$BIN_DIR/$name" "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    pid=$!
    PIDS[$name]=$pid
    if ! wait_port "$port" 60 "$pid"; then
        tail -n 30 "$LOG_DIR/$name.log" >&2 || true
        die "$name did not listen on port $port"
    fi
    # Ready means its database and broker connections are up.
    local i
    for ((i = 0; i < 150; i++)); do
        curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    log "warning: $name is not ready after 30 s; going on"
}

stop_service() {
    local name=$1 pid=${PIDS[$1]:-}
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        wait_pid_gone "$pid" 30 || { log "$name did not stop in 30 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
    fi
    unset "PIDS[$name]"
}

CLEANED=0
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$?
    ((CLEANED)) && return 0
    CLEANED=1
    trap '' INT TERM HUP
    stop_service sync-worker
    stop_service tracker
    stop_service devices
    stop_service auth
    if [[ ${BENCH_KEEP_STACK:-0} != 1 ]]; then
        "$SCRIPT_DIR/stack.sh" down "$BENCH_DIR" || rc=1
    fi
    log "results in $RESULTS"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ------------------------------------------------------------ profiling ---

# CPU ticks (1/100 s, user + system) of the given pids.
cpu_ticks() {
    local total=0 pid stat f
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        read -r -a f <<<"$stat"
        total=$((total + f[11] + f[12]))
    done
    printf '%s\n' "$total"
}

postgres_pids() {
    local pm
    pm=$(head -n1 "$BENCH_DIR/pg/postmaster.pid" 2>/dev/null) || return 0
    printf '%s\n' "$pm"
    pgrep -P "$pm" || true
}

rabbitmq_pid() { live_pid_from_file "$BENCH_DIR/rabbitmq/pid" || true; }

# One line per process group: name and CPU ticks now.
cpu_snapshot() {
    local pg rmq
    mapfile -t pg < <(postgres_pids)
    rmq=$(rabbitmq_pid)
    printf 'tracker %s\n' "$(cpu_ticks "${PIDS[tracker]:-}")"
    printf 'sync-worker %s\n' "$(cpu_ticks "${PIDS[sync-worker]:-}")"
    printf 'auth %s\n' "$(cpu_ticks "${PIDS[auth]:-}")"
    printf 'devices %s\n' "$(cpu_ticks "${PIDS[devices]:-}")"
    printf 'postgresql %s\n' "$(cpu_ticks "${pg[@]}")"
    printf 'rabbitmq %s\n' "$(cpu_ticks "$rmq")"
}

# cpu_report BEFORE_FILE SECONDS: CPU used by each process group since BEFORE_FILE.
cpu_report() {
    local before=$1 secs=$2 name ticks now
    echo "CPU used during the scenario (${secs} s wall; 2 cores = 200%):"
    while read -r name ticks; do
        now=$(cpu_snapshot | awk -v n="$name" '$1 == n {print $2}')
        awk -v n="$name" -v a="$ticks" -v b="$now" -v s="$secs" \
            'BEGIN { d = (b - a) / 100; printf "  %-12s %7.1f s  (%3.0f%% of one core)\n", n, d, 100 * d / (s > 0 ? s : 1) }'
    done <"$before"
}

psql_db() { psql "postgres://postgres@127.0.0.1:$PG_PORT/$1" -X -q -v ON_ERROR_STOP=1 "${@:2}"; }

reset_statements() {
    local db
    for db in tracker legacy; do psql_db "$db" -c 'select pg_stat_statements_reset()' >/dev/null; done
}

top_statements() {
    local db
    for db in tracker legacy; do
        echo "-- $db: top statements by total time"
        psql_db "$db" -P pager=off -c "
            select calls, round(total_exec_time::numeric, 0) as total_ms,
                   round(mean_exec_time::numeric, 3) as mean_ms,
                   left(regexp_replace(query, '\s+', ' ', 'g'), 110) as query
            from pg_stat_statements
            where dbid = (select oid from pg_database where datname = current_database())
            order by total_exec_time desc limit 8"
    done
}

# profiled NAME SECONDS_UNTIL_TOP CMD...: runs CMD with its output in
# RESULTS/NAME.txt, a `top` snapshot mid-run, CPU per process and the busiest
# SQL statements appended.
profiled() {
    local name=$1 top_after=$2 out=$RESULTS/$1.txt started rc=0 topper
    shift 2
    cpu_snapshot >"$RESULTS/$name.cpu-before"
    reset_statements
    (sleep "$top_after" && top -b -n1 -w 200 | head -n 25 >"$RESULTS/$name.top.txt") &
    topper=$!
    started=$(date +%s.%N)
    "$@" 2>&1 | tee "$out" || rc=$?
    kill "$topper" 2>/dev/null || true
    wait "$topper" 2>/dev/null || true
    {
        echo
        cpu_report "$RESULTS/$name.cpu-before" "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
        echo
        [[ -s $RESULTS/$name.top.txt ]] && { echo "top, mid-run:"; cat "$RESULTS/$name.top.txt"; echo; }
        top_statements
    } 2>&1 | tee -a "$out"
    return "$rc"
}

seconds_of() {
    case $1 in
        *ms) echo 1 ;;
        *s) echo "${1%s}" ;;
        *m) echo $((${1%m} * 60)) ;;
        *) echo "$1" ;;
    esac
}

# ------------------------------------------------------------------ run ---

# 1. Stack, always the private one (not servers named by DATABASE_URL/AMQP_URL).
# fsync stays on: the figures are meant to hold for production.
unset DATABASE_URL AMQP_URL
stack_env=$(STACK_FAST=0 "$SCRIPT_DIR/stack.sh" up "$BENCH_DIR" "$PG_PORT" "$AMQP_PORT")
eval "$stack_env"
export DATABASE_URL AMQP_URL
if [[ $(psql "$DATABASE_URL" -X -At -c 'show shared_preload_libraries') != *pg_stat_statements* ]]; then
    log "loading pg_stat_statements (restarts the bench stack once)"
    psql "$DATABASE_URL" -X -q -c "alter system set shared_preload_libraries = 'pg_stat_statements'"
    "$SCRIPT_DIR/stack.sh" down "$BENCH_DIR"
    env -u DATABASE_URL -u AMQP_URL STACK_FAST=0 "$SCRIPT_DIR/stack.sh" up "$BENCH_DIR" "$PG_PORT" "$AMQP_PORT" >/dev/null
fi
# A fresh kitchen each run: products left in the queues by an earlier run would be tapped by
# this one's pizzamakers and skew every figure (a polls-only run would still tap hundreds a
# second). The legacy database stays; lags are read for this run's time window only.
if [[ ${BENCH_KEEP_DATA:-0} != 1 ]]; then
    psql "$DATABASE_URL" -X -q -c 'drop database if exists tracker with (force)'
fi
"$SCRIPT_DIR/stack.sh" createdb tracker legacy auth devices

# 2. Binaries.
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release -p tracker -p sync-worker -p auth -p devices -p loadgen"
    cargo build --release -p tracker -p sync-worker -p auth -p devices -p loadgen
fi
for name in tracker sync-worker auth devices loadgen; do
    [[ -x $BIN_DIR/$name ]] || die "$BIN_DIR/$name not found"
done

# 3. Migrations and services, configured as scripts/run.sh does.
export APP_DATABASE__URL=$DATABASE_URL APP_BUS__URL=$AMQP_URL APP_BUS__EXCHANGE=$EXCHANGE
# Where the tracker (and devices, for staff) check callers: the services started below.
export APP_ACCESS__AUTH_URL=http://127.0.0.1:$AUTH_PORT
export APP_DEVICE_ACCESS__DEVICES_URL=http://127.0.0.1:$DEVICES_PORT
# Benchmarks run on this machine with the compiled-in demo keys.
export APP_DEVELOPMENT=true
export RUST_LOG=${RUST_LOG:-warn}
# No backtrace capture for errors (anyhow captures one per error when RUST_BACKTRACE=1 is
# inherited): under overload every failed request would pay milliseconds of CPU for it and
# write kilobytes of log, which turns a slowdown into a collapse that production would not see.
export RUST_LIB_BACKTRACE=0
for name in tracker sync-worker auth devices; do
    "$BIN_DIR/$name" migrate >"$LOG_DIR/migrate-$name.log" 2>&1 || die "$name migrate failed; see $LOG_DIR/migrate-$name.log"
done
for db in tracker legacy; do psql_db "$db" -c 'create extension if not exists pg_stat_statements' >/dev/null; done

# The chain admin loadgen signs in as (see docs/BENCHMARKS.md): a new login each run, so a
# kept stack never has a stale password; the password goes to create-admin on stdin and to
# loadgen in a file only this user can read.
ADMIN_LOGIN=loadgen-$(date -u +%Y%m%d%H%M%S)
ADMIN_PASSWORD_FILE=$BENCH_DIR/loadgen-admin.password
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n' >"$ADMIN_PASSWORD_FILE")
"$BIN_DIR/auth" create-admin --login "$ADMIN_LOGIN" --display-name "Load generator" \
    <"$ADMIN_PASSWORD_FILE" >"$LOG_DIR/create-admin.log" 2>&1 ||
    die "auth create-admin failed; see $LOG_DIR/create-admin.log"

start_service auth "$AUTH_PORT" serve
# Devices checks staff against auth, so it starts after it.
start_service devices "$DEVICES_PORT" serve
start_service tracker "$TRACKER_PORT" serve
start_service sync-worker "$SYNC_WORKER_PORT" run

LEGACY_DB=postgres://postgres@127.0.0.1:$PG_PORT/legacy
{
    echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "duration: $DURATION, orders per pizzeria per minute: $ORDERS_PER_MINUTE, backlog: $BACKLOG_EVENTS"
} | tee "$RESULTS/machine.txt"

kitchen() {
    local name=$1 pizzerias=$2
    local secs
    local session=(--auth "http://127.0.0.1:$AUTH_PORT" --login "$ADMIN_LOGIN" --password-file "$ADMIN_PASSWORD_FILE")
    secs=$(seconds_of "$DURATION")
    "$BIN_DIR/loadgen" kitchen --setup-only --pizzerias "$pizzerias" "${session[@]}" \
        --tracker "http://127.0.0.1:$TRACKER_PORT" --amqp "$AMQP_URL" --legacy-db "$LEGACY_DB"
    profiled "$name" "$((secs / 2 + 5))" "$BIN_DIR/loadgen" kitchen "${session[@]}" --sessions "$SESSIONS" \
        --pizzerias "$pizzerias" --tablets-per-pizzeria 5 --poll-interval 10s \
        --orders-per-minute "$ORDERS_PER_MINUTE" --duration "$DURATION" \
        --tracker "http://127.0.0.1:$TRACKER_PORT" \
        --sync-worker-metrics "http://127.0.0.1:$SYNC_WORKER_PORT/metrics" \
        --amqp "$AMQP_URL" --exchange "$EXCHANGE" --legacy-db "$LEGACY_DB"
    tracker_latency "$name"
}

# The tracker's own view of the station polls (its histogram, from accept to response, so
# without the client's and the kernel's queueing): how many took at most 10 ms.
tracker_latency() {
    local out=$RESULTS/$1.tracker-latency.txt
    curl -fsS "http://127.0.0.1:$TRACKER_PORT/metrics" 2>/dev/null |
        grep '^http_request_duration_seconds_bucket{.*stations/{station}/queue' >"$out" || true
    awk '
        match($0, /le="[^"]*"/) { n[substr($0, RSTART + 4, RLENGTH - 5)] = $NF + 0 }
        END { if (n["+Inf"] > 0) printf "tracker-side station polls: %d, within 10 ms: %.3f%%, within 1 ms: %.3f%%\n",
              n["+Inf"], 100 * n["0.01"] / n["+Inf"], 100 * n["0.001"] / n["+Inf"] }' "$out" |
        tee -a "$RESULTS/$1.txt"
}

backlog_drain() {
    stop_service sync-worker
    log "publishing $BACKLOG_EVENTS events with the sync worker stopped"
    "$BIN_DIR/loadgen" backlog --events "$BACKLOG_EVENTS" --amqp "$AMQP_URL" --exchange "$EXCHANGE" 2>&1 |
        tee "$RESULTS/c-backlog.txt"
    # The drain counts from the inbox as it is now, before the worker starts.
    "$BIN_DIR/loadgen" drain --expect "$BACKLOG_EVENTS" --legacy-db "$LEGACY_DB" --timeout 30m \
        >"$RESULTS/c-drain.out" 2>&1 &
    local drain=$! i
    for ((i = 0; i < 100; i++)); do
        grep -q 'waiting for' "$RESULTS/c-drain.out" 2>/dev/null && break
        sleep 0.1
    done
    start_service sync-worker "$SYNC_WORKER_PORT" run
    # Profile while the drain runs: follow its output until it exits.
    profiled c 20 tail -n +1 --pid="$drain" -f "$RESULTS/c-drain.out"
    wait "$drain" || die "the drain did not finish; see $RESULTS/c-drain.out"
}

for s in "${SCENARIOS[@]}"; do
    case $s in
        a) log "scenario a: 600 pizzerias"; kitchen a 600 ;;
        b) log "scenario b: 6000 pizzerias"; kitchen b 6000 ;;
        c) log "scenario c: backlog of $BACKLOG_EVENTS events"; backlog_drain ;;
    esac
done
log "done; results in $RESULTS"
