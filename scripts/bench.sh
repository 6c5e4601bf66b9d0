#!/usr/bin/env bash
# `make bench`: the load scenarios of docs/BENCHMARKS.md on a private stack.
#
#   scripts/bench.sh [SCENARIO...]   default: a b@0 b@0.2 b@1 c d (also "a,b")
#     a   Dodo's 2020 scale: 600 pizzerias x 5 tablets polling every 10 s
#     b   ten times that: 6000 pizzerias, at BENCH_ORDERS_PER_MINUTE
#     b@R the same at R orders per pizzeria per minute (0 is polls only)
#     c   the sync worker draining a backlog of 1,000,000 tracker events
#     d   the tracker's relay publishing an outbox of 1,000,000 unpublished events
#
# Before each scenario it measures the box's own limits (pgbench single-row
# commits/s; the broker's publish+confirm and consume+ack on a throwaway quorum
# queue, `loadgen probe-broker`), and after it prints the scenario's rate as a
# share of them, and each process's CPU per unit of work (from /proc).
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
#   BENCH_RELAY_EVENTS=1000000   outbox rows in scenario d
#   BENCH_LIMIT_SECONDS=10       how long pgbench measures the commit limit
#   BENCH_PGBENCH_CLIENTS=8      its clients (the tracker's pool is 20)
#   BENCH_PROBE_MESSAGES=100000  messages of the broker probe
#   BENCH_PERF=1                 also record `perf` system-wide for BENCH_PERF_SECONDS
#   BENCH_PERF_SECONDS=20          (default 20) in the middle of each scenario
#   BENCH_D_WITHOUT_HISTORY=1    scenario d with the history stream unbound (what the stream's
#                                copy costs the broker; diagnosis only)
#   BENCH_DIR=.stack/bench       stack data; results go to BENCH_DIR/results/<time>/
#   BENCH_TRACKER_PORT=58081     service ports: not 8081-8084, so a `make run`
#   BENCH_SYNC_WORKER_PORT=58082   can stay up beside a benchmark
#   BENCH_AUTH_PORT=58083
#   BENCH_DEVICES_PORT=58084
#   BENCH_SKIP_BUILD=1           use the binaries in $CARGO_TARGET_DIR/release as they are
#                                (they are copied to BENCH_DIR/bin first either way, so a
#                                build by someone sharing the target dir cannot swap them
#                                mid-run)
#   BENCH_BUILD_DIR=DIR          take the binaries from DIR instead (with BENCH_SKIP_BUILD=1:
#                                binaries of an earlier commit, for "before" figures)
#   BENCH_KEEP_STACK=1           leave PostgreSQL + RabbitMQ running afterwards
#   BENCH_KEEP_DATA=1            keep the tracker and legacy databases of the last run
#                                (dropped by default, so queues start empty and the
#                                legacy lag reads scan this run's rows only)
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
RELAY_EVENTS=${BENCH_RELAY_EVENTS:-1000000}
LIMIT_SECONDS=${BENCH_LIMIT_SECONDS:-10}
PGBENCH_CLIENTS=${BENCH_PGBENCH_CLIENTS:-8}
PROBE_MESSAGES=${BENCH_PROBE_MESSAGES:-100000}
PERF_SECONDS=${BENCH_PERF_SECONDS:-20}
BUILD_DIR=${BENCH_BUILD_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
EXCHANGE=kitchen
# "a b", "a,b" and "a" "b" all work.
read -r -a SCENARIOS <<<"${*//,/ }"
((${#SCENARIOS[@]})) || SCENARIOS=(a b@0 b@0.2 b@1 c d)
for s in "${SCENARIOS[@]}"; do
    [[ $s == [abcd] || $s =~ ^b@[0-9]+(\.[0-9]+)?$ ]] ||
        die "unknown scenario '$s' (expected a, b, b@RATE, c or d)"
done

RESULTS=$BENCH_DIR/results/$(date -u +%Y%m%dT%H%M%SZ)
LOG_DIR=$BENCH_DIR/logs
BIN_DIR=$BENCH_DIR/bin
mkdir -p "$RESULTS" "$LOG_DIR"
declare -A PIDS=()

# ------------------------------------------------------------- services ---

start_service() {
    local name=$1 port=$2 pid
    shift 2
    port_open "$port" && die "port $port is in use; set BENCH_TRACKER_PORT / BENCH_SYNC_WORKER_PORT / BENCH_AUTH_PORT / BENCH_DEVICES_PORT"
    log "starting $name on 127.0.0.1:$port (log: $LOG_DIR/$name.log)"
    # Each service on the bus as its own RabbitMQ user, as in `make run`.
    local bus_var
    bus_var=KITCHEN_BUS_URL_$(tr 'a-z-' 'A-Z_' <<<"$name")
    APP_BUS__URL=${!bus_var:?$bus_var is not set (scripts/stack.sh prints it)} APP_APPLICATION__PORT=$port \
        setsid "$BIN_DIR/$name" "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
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

# CPU ticks (1/100 s) of the given pids: user, then system (the kernel working for them).
# Each pid's count includes its children that have exited (cutime, cstime): a PostgreSQL
# backend that ends within the window leaves its CPU in the postmaster's, not nowhere.
cpu_ticks() {
    local user=0 system=0 pid stat f
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        read -r -a f <<<"$stat"
        user=$((user + f[11] + f[13]))
        system=$((system + f[12] + f[14]))
    done
    printf '%s %s\n' "$user" "$system"
}

postgres_pids() {
    local pm
    pm=$(head -n1 "$BENCH_DIR/pg/postmaster.pid" 2>/dev/null) || return 0
    printf '%s\n' "$pm"
    pgrep -P "$pm" || true
}

rabbitmq_pid() { live_pid_from_file "$BENCH_DIR/rabbitmq/pid" || true; }

# The pids of one process group: a service by name, postgresql (the postmaster and its
# backends and workers) or rabbitmq (the beam).
group_pids() {
    case $1 in
        postgresql) postgres_pids ;;
        rabbitmq) rabbitmq_pid ;;
        *) [[ -n ${PIDS[$1]:-} ]] && printf '%s\n' "${PIDS[$1]}" ;;
    esac
    return 0
}

GROUPS_MEASURED=(tracker sync-worker auth devices postgresql rabbitmq)

# One line per process group: name, then user and system CPU ticks now.
cpu_snapshot() {
    local group pids
    for group in "${GROUPS_MEASURED[@]}"; do
        mapfile -t pids < <(group_pids "$group")
        printf '%s %s\n' "$group" "$(cpu_ticks "${pids[@]}")"
    done
}

# cpu_report NAME SECONDS UNITS LABEL: CPU used by each process group between NAME.cpu-before
# and NAME.cpu-after, as a share of one core and per unit of work (UNITS of LABEL), summed
# over the processes an order-flow transaction touches (as issue #8 counts them).
cpu_report() {
    local name=$1 secs=$2 units=$3 label=$4 loadgen
    # loadgen's own figure over its load (from /proc/self/stat, printed by `loadgen kitchen`).
    loadgen=$(number_after "$RESULTS/$name.txt" 'loadgen CPU')
    echo "CPU used during the scenario (${secs} s wall; 2 cores = 200%), per $label ($units of them):"
    # A transaction's CPU in ms (the goal is 1 ms), an event's in µs.
    awk -v s="$secs" -v u="$units" -v label="$label" -v lg="$loadgen" \
        -v scale="$([[ $label == transaction ]] && echo 1e3 || echo 1e6)" \
        -v unit="$([[ $label == transaction ]] && echo ms || echo us)" '
        FNR == NR { user[$1] = $2; sys[$1] = $3; next }
        {
            d = ($2 + $3 - user[$1] - sys[$1]) / 100
            cpu[$1] = d; order[++n] = $1
            kernel[$1] = d > 0 ? sprintf("  (%.0f%% in the kernel)", ($3 - sys[$1]) / d) : ""
        }
        function row(name, d, note) {
            printf "  %-12s %8.1f s  %4.0f%% of one core  %9.3f %s per %s%s\n", name, d,
                100 * d / (s > 0 ? s : 1), (u > 0 ? scale * d / u : 0), unit, label, note
        }
        END {
            if (lg != "") { cpu["loadgen"] = lg; order[++n] = "loadgen" }
            for (i = 1; i <= n; i++) row(order[i], cpu[order[i]], kernel[order[i]])
            flow = cpu["postgresql"] + cpu["tracker"] + cpu["rabbitmq"] + cpu["sync-worker"] + cpu["auth"]
            all = 0; for (k in cpu) all += cpu[k]
            row("order flow", flow, "  (postgresql + tracker + rabbitmq + sync-worker + auth)")
            row("all", all, "  (every process above)")
        }' "$RESULTS/$name.cpu-before" "$RESULTS/$name.cpu-after"
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
            select calls, rows, round(total_exec_time::numeric, 0) as total_ms,
                   round(mean_exec_time::numeric, 3) as mean_ms,
                   case when toplevel then '' else '(in a function) ' end
                       || left(regexp_replace(query, '\s+', ' ', 'g'), 110) as query
            from pg_stat_statements
            where dbid = (select oid from pg_database where datname = current_database())
            order by total_exec_time desc limit 20"
        # Execution time only (top-level statements): parsing, planning, the protocol and
        # commits are outside it, so set it beside the PostgreSQL CPU of the window.
        psql_db "$db" -At -F ' ' -c "
            select 'all statements: ' || sum(calls) || ' calls, ' || round(sum(total_exec_time)::numeric, 0)
                   || ' ms executing, ' || round(sum(total_plan_time)::numeric, 0) || ' ms planning'
            from pg_stat_statements
            where dbid = (select oid from pg_database where datname = current_database())
              and toplevel"
    done
}

# wait_events: PostgreSQL's connections by database and state, and what each waits on, sampled
# every 50 ms for 5 s. CPU figures cannot show a queue; this can: on a lock ("Lock object" at
# commit is the database-wide lock NOTIFY holds until the commit is flushed), on the WAL flush,
# on the client between the statements of a transaction ("idle in transaction"), or none at all
# (how many of a pool's connections sit idle).
wait_events() {
    psql_db postgres -At -F $'\t' <<'SQL'
create temporary table samples (wait text);
do $$
begin
    for i in 1..100 loop
        insert into samples
        select datname || ' ' || state || ': '
               || coalesce(wait_event_type || ' ' || wait_event, 'on CPU')
        from pg_stat_activity
        where backend_type = 'client backend' and pid <> pg_backend_pid();
        perform pg_stat_clear_snapshot();
        perform pg_sleep(0.05);
    end loop;
end $$;
select round(count(*) / 100.0, 2), wait from samples group by wait order by count(*) desc;
SQL
}

# profile_begin NAME SECONDS_UNTIL_TOP: the start of a scenario's measuring window: CPU
# snapshot, statement statistics reset, a `top` snapshot mid-run and, with BENCH_PERF=1, a
# system-wide `perf` profile around the same moment.
profile_begin() {
    local name=$1 top_after=$2
    PROFILE_STARTED=$(date +%s.%N)
    cpu_snapshot >"$RESULTS/$name.cpu-before"
    reset_statements
    # With the sockets' summary: connections churned by a client show up as TIME_WAIT.
    (sleep "$top_after" && { top -b -n1 -w 200 | head -n 25; ss -s; } >"$RESULTS/$name.top.txt" 2>&1
        {
            echo "PostgreSQL connections, on average over 5 s, by database, state and what they wait on:"
            wait_events
        } >"$RESULTS/$name.waits.txt" 2>&1) &
    TOPPER=$!
    PERFER=
    if [[ ${BENCH_PERF:-0} == 1 ]]; then
        command -v perf >/dev/null || die "BENCH_PERF=1 needs perf (apt-get install linux-perf)"
        local perf_after=$((top_after > PERF_SECONDS / 2 ? top_after - PERF_SECONDS / 2 : 0))
        # No call graphs: a flat profile per process is what the report reads, and it keeps
        # the recording's own cost small. Bounded by the `sleep`.
        (sleep "$perf_after" &&
            perf record -F 499 -a -o "$RESULTS/$name.perf.data" -- sleep "$PERF_SECONDS") \
            >"$RESULTS/$name.perf.log" 2>&1 &
        PERFER=$!
    fi
}

# perf_summary NAME: what the system-wide profile of NAME saw: samples by command (who else
# was busy), then the top symbols of each of our process groups, by their pids.
perf_summary() {
    local data=$RESULTS/$1.perf.data group pids
    echo
    echo "perf, ${PERF_SECONDS} s system-wide at 499 Hz: samples by command (threads of one name together)"
    perf report -i "$data" --stdio --no-children --sort comm 2>/dev/null | awk '!/^#/ && NF && n++ < 15'
    for group in "${GROUPS_MEASURED[@]}" loadgen; do
        pids=$(group_pids "$group" | paste -sd, -)
        [[ -n $pids ]] || continue
        perf report -i "$data" --stdio --no-children --pid "$pids" --percentage relative \
            --sort dso,sym --percent-limit 0.5 >"$RESULTS/$1.perf-$group.txt" 2>/dev/null || true
        echo "perf: $group, top symbols (share of its own samples; all in $1.perf-$group.txt)"
        awk '!/^#/ && NF && n++ < 15' "$RESULTS/$1.perf-$group.txt"
    done
}

# profile_stop NAME: closes the CPU window of NAME now (profile_end closes it otherwise).
profile_stop() {
    cpu_snapshot >"$RESULTS/$1.cpu-after"
    PROFILE_STOPPED=$(date +%s.%N)
}

# profile_end NAME UNITS LABEL: the end of the window; appends CPU per process (also per unit
# of work), the `top` snapshot, the busiest SQL statements and the perf profile to NAME.txt.
profile_end() {
    local name=$1 units=$2 label=$3 secs
    [[ -n ${PROFILE_STOPPED:-} ]] || profile_stop "$name"
    secs=$(awk -v a="$PROFILE_STARTED" -v b="$PROFILE_STOPPED" 'BEGIN { printf "%.1f", b - a }')
    PROFILE_STOPPED=
    kill "$TOPPER" 2>/dev/null || true
    wait "$TOPPER" 2>/dev/null || true
    [[ -n $PERFER ]] && { wait "$PERFER" || true; }
    {
        echo
        cpu_report "$name" "$secs" "$units" "$label"
        echo
        [[ -s $RESULTS/$name.top.txt ]] && { echo "top, mid-run:"; cat "$RESULTS/$name.top.txt"; echo; }
        [[ -s $RESULTS/$name.waits.txt ]] && { cat "$RESULTS/$name.waits.txt"; echo; }
        top_statements
        if [[ -s $RESULTS/$name.perf.data ]]; then perf_summary "$name"; fi
    } 2>&1 | tee -a "$RESULTS/$name.txt"
}

# wait_for_line FILE TEXT PID: waits until FILE holds TEXT; false if PID ends first or after
# five minutes.
wait_for_line() {
    local file=$1 text=$2 pid=$3 i
    for ((i = 0; i < 3000; i++)); do
        grep -qF "$text" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# The first number after PATTERN in FILE (last match), or nothing.
number_after() {
    sed -n "s/.*$2 *\([0-9][0-9.]*\).*/\1/p" "$1" | tail -n 1
}

# share RATE LIMIT: RATE as a percentage of LIMIT.
share() {
    awk -v r="$1" -v l="$2" 'BEGIN { if (r != "" && l > 0) printf "%.1f%%", 100 * r / l; else printf "n/a" }'
}

# ---------------------------------------------------------- box limits ---

# PostgreSQL's single-row commits/s with fsync on, from pgbench in a database of its own.
pg_commit_limit() {
    local name=$1 url=postgres://postgres@127.0.0.1:$PG_PORT/bench_limits tps
    psql_db postgres -c 'set client_min_messages = warning' \
        -c 'drop database if exists bench_limits' -c 'create database bench_limits'
    psql_db bench_limits -c 'create table commit_probe (id bigserial primary key, at timestamptz not null default now())'
    echo 'insert into commit_probe default values;' >"$RESULTS/pgbench-commit.sql"
    "$PG_BIN/pgbench" -n -M prepared -c "$PGBENCH_CLIENTS" -j 2 -T "$LIMIT_SECONDS" \
        -f "$RESULTS/pgbench-commit.sql" "$url" >"$RESULTS/$name.pgbench.txt" 2>&1 ||
        { cat "$RESULTS/$name.pgbench.txt" >&2; return 1; }
    psql_db postgres -c 'drop database bench_limits'
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$RESULTS/$name.pgbench.txt" | head -n 1)
    printf 'pgbench limit: %.0f single-row commits/s (%s clients, %s s, fsync on)\n' \
        "$tps" "$PGBENCH_CLIENTS" "$LIMIT_SECONDS"
}

# measure_limits NAME: the box's limits right before scenario NAME, so a busy box moves the
# limit and the scenario's figure together and their ratio stays comparable between runs.
measure_limits() {
    local name=$1 out=$RESULTS/$1.limits.txt rmq before
    log "scenario $name: measuring the box's limits"
    rmq=$(rabbitmq_pid)
    # A failed measurement leaves its ratios at n/a; it does not cost the scenario.
    {
        pg_commit_limit "$name" || log "warning: pgbench failed; see $RESULTS/$name.pgbench.txt"
        before=$(cpu_ticks "$rmq")
        "$BIN_DIR/loadgen" probe-broker --amqp "$AMQP_URL" --messages "$PROBE_MESSAGES" --timeout 180s ||
            log "warning: the broker probe failed"
        # What a message costs the broker when it does nothing else: beside a scenario's
        # RabbitMQ CPU per event, it tells the broker's own cost from what our clients add.
        awk -v a="$before" -v b="$(cpu_ticks "$rmq")" -v n="$PROBE_MESSAGES" 'BEGIN {
            split(a, x, " "); split(b, y, " ")
            printf "broker CPU in the probe: %.1f us per message published and consumed\n",
                1e4 * (y[1] + y[2] - x[1] - x[2]) / n }'
    } 2>&1 | tee "$out"
    LIMIT_COMMITS=$(number_after "$out" 'pgbench limit:')
    LIMIT_PUBLISH=$(number_after "$out" 'publish+confirm')
    LIMIT_CONSUME_EACH=$(sed -n 's/.*consume+ack \([0-9.]*\) msg\/s (an ack frame.*/\1/p' "$out")
    LIMIT_CONSUME_MULTIPLE=$(sed -n 's/.*consume+ack \([0-9.]*\) msg\/s (multiple acks.*/\1/p' "$out")
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
# Statements inside functions (finish_order_change, the triggers) are counted on their own too,
# so a function's cost can be taken apart; the totals above count top-level statements only.
psql "$DATABASE_URL" -X -q -c "alter system set pg_stat_statements.track = 'all'" -c 'select pg_reload_conf()' >/dev/null
# A fresh kitchen each run: products left in the queues by an earlier run would be tapped by
# this one's pizzamakers and skew every figure (a polls-only run would still tap hundreds a
# second). The legacy database goes too: the tap -> legacy lag is read with a join over all of
# order_history, and after a few 300,000-event backlogs (scenario c) those two reads took 28 s
# of PostgreSQL inside the measuring window of a (20261130T123838Z).
if [[ ${BENCH_KEEP_DATA:-0} != 1 ]]; then
    psql "$DATABASE_URL" -X -q -c 'drop database if exists tracker with (force)' \
        -c 'drop database if exists legacy with (force)'
fi
"$SCRIPT_DIR/stack.sh" createdb tracker legacy auth devices

# 2. Binaries, copied to BENCH_DIR/bin: the target dir may be shared, and another build
# must not swap a binary between two scenarios of this run.
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release -p tracker -p sync-worker -p auth -p devices -p loadgen"
    cargo build --release -p tracker -p sync-worker -p auth -p devices -p loadgen
fi
mkdir -p "$BIN_DIR"
for name in tracker sync-worker auth devices loadgen; do
    [[ -x $BUILD_DIR/$name ]] || die "$BUILD_DIR/$name not found"
    cp -f "$BUILD_DIR/$name" "$BIN_DIR/$name"
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

# Under overload the tablets' connections pile up (one per request in flight, up to one per
# tablet: 30,000 in b), and this box's default of 20,000 descriptors ran the tracker out of
# them: it then failed to reach auth and answered 503. A production service has far more
# (systemd and containers give 524,288 and up); the services inherit this. Raising the hard
# limit needs CAP_SYS_RESOURCE, which a sandbox may not give: then the run says so and goes on.
ulimit -n 262144 2>/dev/null || log "warning: cannot raise the open-files limit above $(ulimit -n); an overloaded tracker may run out (\"Too many open files\" in its log)"
start_service auth "$AUTH_PORT" serve
# Devices checks staff against auth, so it starts after it.
start_service devices "$DEVICES_PORT" serve
start_service tracker "$TRACKER_PORT" serve
start_service sync-worker "$SYNC_WORKER_PORT" run

LEGACY_DB=postgres://postgres@127.0.0.1:$PG_PORT/legacy
{
    echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "duration: $DURATION, orders per pizzeria per minute: $ORDERS_PER_MINUTE, backlog: $BACKLOG_EVENTS, relay: $RELAY_EVENTS"
} | tee "$RESULTS/machine.txt"

kitchen() {
    local name=$1 pizzerias=$2
    local secs units load
    local session=(--auth "http://127.0.0.1:$AUTH_PORT" --login "$ADMIN_LOGIN" --password-file "$ADMIN_PASSWORD_FILE")
    secs=$(seconds_of "$DURATION")
    "$BIN_DIR/loadgen" kitchen --setup-only --pizzerias "$pizzerias" "${session[@]}" \
        --tracker "http://127.0.0.1:$TRACKER_PORT" --amqp "$KITCHEN_BUS_URL_CASHIER" --legacy-db "$LEGACY_DB"
    measure_limits "$name"
    "$BIN_DIR/loadgen" kitchen "${session[@]}" --sessions "$SESSIONS" \
        --pizzerias "$pizzerias" --tablets-per-pizzeria 5 --poll-interval 10s \
        --orders-per-minute "$ORDERS_PER_MINUTE" --duration "$DURATION" \
        --tracker "http://127.0.0.1:$TRACKER_PORT" \
        --sync-worker-metrics "http://127.0.0.1:$SYNC_WORKER_PORT/metrics" \
        --amqp "$KITCHEN_BUS_URL_CASHIER" --exchange "$EXCHANGE" --legacy-db "$LEGACY_DB" 2>&1 |
        tee "$RESULTS/$name.txt" &
    load=$!
    # The window opens with the load, after the sign-ins: each of the --sessions sign-ins
    # costs auth an argon2 hash, which is not the order flow's.
    wait_for_line "$RESULTS/$name.txt" 'load starts now' "$load" || { wait "$load" || true; die "loadgen kitchen did not start its load"; }
    tracker_histogram "$RESULTS/$name.tracker-latency-start.txt"
    # For the perf summary only: its CPU comes from its own report (it has exited by the time
    # the window closes).
    PIDS[loadgen]=$(pgrep -P $$ -x loadgen || true)
    profile_begin "$name" "$((secs / 2))"
    # The window closes when the load does, before loadgen's own lag queries.
    wait_for_line "$RESULTS/$name.txt" 'load ends now' "$load" && profile_stop "$name"
    wait "$load" || die "loadgen kitchen failed; see $RESULTS/$name.txt"
    # Per order-flow transaction: each tap and each intake (a run with no orders has none, and
    # then the per-unit column is empty).
    units=$(sed -n 's/.*order-flow transactions: .* = \([0-9]*\) .*/\1/p' "$RESULTS/$name.txt" | tail -n 1)
    profile_end "$name" "${units:-0}" transaction
    unset "PIDS[loadgen]"
    tracker_latency "$name"
    {
        local taps_rate tx_rate
        taps_rate=$(number_after "$RESULTS/$name.txt" 'taps\/s')
        tx_rate=$(sed -n 's/.*order-flow transactions: .* (\([0-9.]*\)\/s).*/\1/p' "$RESULTS/$name.txt" | tail -n 1)
        echo "share of the box's limits (measured just before):"
        echo "  order-flow transactions/s ${tx_rate:-n/a} = $(share "$tx_rate" "$LIMIT_COMMITS") of pgbench single-row commits/s ($LIMIT_COMMITS)"
        echo "  taps/s ${taps_rate:-n/a} = $(share "$taps_rate" "$LIMIT_COMMITS") of pgbench single-row commits/s"
    } | tee -a "$RESULTS/$name.txt"
}

# The tracker's own view of the station polls and the taps (its histogram, from accept to
# response, so without the client's and the kernel's queueing): how many took at most 1, 10
# and 50 ms. Beside loadgen's figures it says where a slow request waited. The histogram counts
# from the tracker's start, so the snapshot taken when the load began (NAME.tracker-latency-start.txt)
# is subtracted.
tracker_histogram() {
    curl -fsS "http://127.0.0.1:$TRACKER_PORT/metrics" 2>/dev/null |
        grep -E '^(http_request_duration_seconds_bucket|db_hot_connection_requests_total)\{' >"$1" || true
}

tracker_latency() {
    local out=$RESULTS/$1.tracker-latency.txt start=$RESULTS/$1.tracker-latency-start.txt what
    tracker_histogram "$out"
    for what in "station polls:stations/{station}/queue" "taps:products/{product_id}/tap"; do
        awk -v what="${what%%:*}" -v pattern="${what#*:}" '
            index($0, pattern) && match($0, /le="[^"]*"/) {
                le = substr($0, RSTART + 4, RLENGTH - 5)
                if (FILENAME == ARGV[1]) n[le] -= $NF; else n[le] += $NF
            }
            END { if (n["+Inf"] > 0) printf "tracker-side %s: %d, within 1 ms: %.3f%%, 10 ms: %.3f%%, 50 ms: %.3f%%\n",
                  what, n["+Inf"], 100 * n["0.001"] / n["+Inf"], 100 * n["0.01"] / n["+Inf"], 100 * n["0.05"] / n["+Inf"] }' \
            "$start" "$out"
    done | tee -a "$RESULTS/$1.txt"
    # Requests meant for a hot connection that found every slot busy and took the pool's.
    awk '/^db_hot_connection_requests_total/ {
            kind = ($0 ~ /connection="pool"/) ? "pool" : "hot"
            if (FILENAME == ARGV[1]) n[kind] -= $NF; else n[kind] += $NF
        }
        END { if (n["hot"] + n["pool"] > 0) printf "tracker-side hot connections: %d requests, %.3f%% of them on the pool (every slot busy)\n",
              n["hot"] + n["pool"], 100 * n["pool"] / (n["hot"] + n["pool"]) }' \
        "$start" "$out" | tee -a "$RESULTS/$1.txt"
}

# backlog_window NAME EVENTS WATCHER OUT SERVICE PORT ARG: the measuring window of a backlog
# scenario. It opens before SERVICE starts, so its start-up work counts too, follows the
# watcher's output OUT until the watcher exits, and closes with the CPU per event.
backlog_window() {
    local name=$1 events=$2 watcher=$3 out=$4 service=$5 port=$6 arg=$7
    profile_begin "$name" 20
    start_service "$service" "$port" "$arg"
    tail -n +1 --pid="$watcher" -f "$out" | tee "$RESULTS/$name.txt"
    wait "$watcher" || die "scenario $name did not finish; see $out"
    profile_end "$name" "$events" event
}

backlog_drain() {
    local drain rate
    measure_limits c
    stop_service sync-worker
    log "publishing $BACKLOG_EVENTS events with the sync worker stopped"
    "$BIN_DIR/loadgen" backlog --events "$BACKLOG_EVENTS" --amqp "$KITCHEN_BUS_URL_TRACKER" --exchange "$EXCHANGE" 2>&1 |
        tee "$RESULTS/c-backlog.txt"
    # The drain counts from the inbox as it is now, before the worker starts.
    "$BIN_DIR/loadgen" drain --expect "$BACKLOG_EVENTS" --legacy-db "$LEGACY_DB" --timeout 30m \
        >"$RESULTS/c-drain.out" 2>&1 &
    drain=$!
    wait_for_line "$RESULTS/c-drain.out" 'waiting for' "$drain" || die "the drain did not start; see $RESULTS/c-drain.out"
    backlog_window c "$BACKLOG_EVENTS" "$drain" "$RESULTS/c-drain.out" sync-worker "$SYNC_WORKER_PORT" run
    rate=$(sed -n 's/.*by inbox.processed_at.*: \([0-9.]*\) events\/s.*/\1/p' "$RESULTS/c-drain.out")
    {
        echo "share of the box's limits (measured just before):"
        echo "  drain events/s ${rate:-n/a} = $(share "$rate" "$LIMIT_CONSUME_EACH") of broker consume+ack with an ack frame per message ($LIMIT_CONSUME_EACH)"
        echo "  drain events/s ${rate:-n/a} = $(share "$rate" "$LIMIT_CONSUME_MULTIPLE") of broker consume+ack with multiple acks ($LIMIT_CONSUME_MULTIPLE)"
    } | tee -a "$RESULTS/c.txt"
}

# Scenario d: the tracker restarts after a long broker outage with RELAY_EVENTS events in its
# outbox. They are staged with the tracker stopped; the window runs from the tracker's start
# until no row is unpublished.
relay_backlog() {
    local tracker_db=postgres://postgres@127.0.0.1:$PG_PORT/tracker watch rate
    measure_limits d
    # The relay is measured alone: a running sync worker would drain the same events on the
    # same two cores, and its queue keeps them for the order check below.
    stop_service sync-worker
    stop_service tracker
    if [[ ${BENCH_D_WITHOUT_HISTORY:-0} == 1 ]]; then
        # Diagnosis only: how much of the broker's cost per relayed event is the history
        # stream's copy. The sync worker binds the stream again when it starts after d.
        log "unbinding the history stream for this d (BENCH_D_WITHOUT_HISTORY=1)"
        local credentials=${AMQP_URL#amqp://}
        credentials=${credentials%%@*}
        curl -fsS -u "$credentials" -X DELETE \
            "$RABBITMQ_MANAGEMENT_URL/api/bindings/%2f/e/$EXCHANGE/q/$EXCHANGE.history/%23" ||
            die "could not unbind the history stream"
    fi
    log "staging $RELAY_EVENTS events in the tracker's outbox with the tracker stopped"
    "$BIN_DIR/loadgen" outbox-fill --events "$RELAY_EVENTS" --tracker-db "$tracker_db" 2>&1 |
        tee "$RESULTS/d-fill.txt"
    # The fill wrote about a kilobyte of WAL per row; the relay starts after a checkpoint, not
    # during one the fill set off.
    psql_db tracker -c checkpoint
    "$BIN_DIR/loadgen" relay-watch --tracker-db "$tracker_db" --timeout 30m >"$RESULTS/d-relay.out" 2>&1 &
    watch=$!
    wait_for_line "$RESULTS/d-relay.out" 'waiting for' "$watch" || die "relay-watch did not start; see $RESULTS/d-relay.out"
    backlog_window d "$RELAY_EVENTS" "$watch" "$RESULTS/d-relay.out" tracker "$TRACKER_PORT" serve
    rate=$(sed -n 's/.*by outbox.published_at.*: \([0-9.]*\) events\/s.*/\1/p' "$RESULTS/d-relay.out")
    {
        echo "share of the box's limits (measured just before):"
        echo "  relay events/s ${rate:-n/a} = $(share "$rate" "$LIMIT_PUBLISH") of broker publish+confirm ($LIMIT_PUBLISH)"
    } | tee -a "$RESULTS/d.txt"
    # Per-order order as the sync worker would receive it: read back from its queue.
    "$BIN_DIR/loadgen" relay-check --expect "$RELAY_EVENTS" --amqp "$KITCHEN_BUS_URL_SYNC_WORKER" --exchange "$EXCHANGE" 2>&1 |
        tee -a "$RESULTS/d.txt" || log "warning: the relay's events did not all arrive in per-order sequence"
    start_service sync-worker "$SYNC_WORKER_PORT" run
}

for s in "${SCENARIOS[@]}"; do
    case $s in
        a) log "scenario a: 600 pizzerias"; kitchen a 600 ;;
        b) log "scenario b: 6000 pizzerias"; kitchen b 6000 ;;
        b@*)
            log "scenario $s: 6000 pizzerias at ${s#b@} orders/min"
            ORDERS_PER_MINUTE=${s#b@} kitchen "$s" 6000
            ;;
        c) log "scenario c: backlog of $BACKLOG_EVENTS events"; backlog_drain ;;
        d) log "scenario d: outbox of $RELAY_EVENTS events"; relay_backlog ;;
    esac
done
log "done; results in $RESULTS"
