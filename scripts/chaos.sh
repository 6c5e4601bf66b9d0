#!/usr/bin/env bash
# The fault-injection test (issue 12): orders, taps, cancellations and hand-overs while the
# sync worker and the tracker are killed with `kill -9` and RabbitMQ and PostgreSQL restart;
# then it counts orders lost, tracker and legacy states that differ, history rows applied
# twice, dead letters and unpublished outbox rows, prints them and fails on any that is not 0.
#
#   scripts/chaos.sh [short|long]
#       short (what `make test` runs, 1-2 minutes): 120 orders at 3 a second, one of each
#       fault. long (`make chaos`): 3,000 orders at 10 a second, a fault every 3-6 s until
#       they are all sold. CHAOS_ORDERS and CHAOS_PACE override the numbers.
#
# It runs on a durable stack of its own (PostgreSQL on 55435, RabbitMQ on 55676, in a temporary
# folder removed afterwards; CHAOS_PG_PORT / CHAOS_AMQP_PORT move them), never on one that
# DATABASE_URL or AMQP_URL name, because it restarts both. The services run as in `make run`,
# each as its own RabbitMQ user, from debug binaries (CHAOS_PROFILE=release for release ones).
# The driver and checker is `loadgen chaos` (loadgen/src/chaos.rs).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"
cd "$ROOT"

FORM=${1:-short}
case $FORM in
    short) ORDERS=${CHAOS_ORDERS:-120} PACE=${CHAOS_PACE:-3} ;;
    long) ORDERS=${CHAOS_ORDERS:-3000} PACE=${CHAOS_PACE:-10} ;;
    *) die "usage: $0 [short|long]" ;;
esac
PG_PORT=${CHAOS_PG_PORT:-55435}
AMQP_PORT=${CHAOS_AMQP_PORT:-55676}
PROFILE=${CHAOS_PROFILE:-debug}
BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE
DIR=$(mktemp -d "${KITCHEN_TEST_TMPDIR:-/tmp}/kitchen-chaos.XXXXXX")
chmod 755 "$DIR"
LOG_DIR=$DIR/logs
mkdir -p "$LOG_DIR"
declare -A PIDS=() PORTS=([tracker]=0 [sync-worker]=0 [auth]=0)
LOADGEN=""

CLEANED=0
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$? name
    ((CLEANED)) && return 0
    CLEANED=1
    trap '' INT TERM HUP
    [[ -z $LOADGEN ]] || kill -TERM "$LOADGEN" 2>/dev/null || true
    for name in "${!PIDS[@]}"; do stop_service "$name"; done
    if "$SCRIPT_DIR/stack.sh" down "$DIR" >/dev/null 2>&1 && ((rc == 0)); then
        rm -rf "$DIR"
    else
        log "kept $DIR (logs in $LOG_DIR)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# 1. The binaries and a stack of its own.
if [[ ${KITCHEN_SKIP_BUILD:-0} != 1 ]]; then
    flags=()
    [[ $PROFILE == release ]] && flags=(--release)
    log "cargo build ${flags[*]} -p tracker -p sync-worker -p auth -p loadgen --bins"
    cargo build -q "${flags[@]}" -p tracker -p sync-worker -p auth -p loadgen --bins
fi
# Copies of this build: the target folder may be shared, and another build must not swap a
# binary under the test.
mkdir -p "$DIR/bin"
for name in tracker sync-worker auth loadgen; do
    cp -f "$BIN_DIR/$name" "$DIR/bin/$name" || die "$BIN_DIR/$name not found"
done
BIN_DIR=$DIR/bin
# Durable as in production (fsync and synchronous_commit on): the faults include a PostgreSQL
# crash, and without them a crash loses commits that consumers have already acknowledged.
stack_env=$(env -u DATABASE_URL -u AMQP_URL -u RABBITMQ_MANAGEMENT_URL STACK_FAST=0 "$SCRIPT_DIR/stack.sh" up "$DIR" "$PG_PORT" "$AMQP_PORT")
eval "$stack_env"
export DATABASE_URL AMQP_URL
"$SCRIPT_DIR/stack.sh" createdb tracker legacy auth >/dev/null 2>&1
export APP_DATABASE__URL=$DATABASE_URL APP_DEVELOPMENT=true RUST_LOG=${RUST_LOG:-warn}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
for name in "${!PORTS[@]}"; do PORTS[$name]=$(free_port); done
export APP_ACCESS__AUTH_URL=http://127.0.0.1:${PORTS[auth]}
for step in "tracker migrate" "sync-worker migrate" "auth migrate"; do
    # shellcheck disable=SC2086 # binary and sub-command
    "$BIN_DIR"/$step >>"$LOG_DIR/migrate.log" 2>&1 || die "$step failed; see $LOG_DIR/migrate.log"
done
PASSWORD_FILE=$DIR/admin.password
(umask 077 && random_password >"$PASSWORD_FILE")
"$BIN_DIR/auth" create-admin --login chaos.admin --display-name "Chaos" <"$PASSWORD_FILE" \
    >>"$LOG_DIR/create-admin.log" 2>&1 || die "auth create-admin failed"

start_service() {
    local name=$1 role=serve bus_var
    [[ $name == sync-worker ]] && role=run
    bus_var=KITCHEN_BUS_URL_$(tr 'a-z-' 'A-Z_' <<<"$name")
    APP_BUS__URL=${!bus_var} APP_APPLICATION__PORT=${PORTS[$name]} \
        setsid "$BIN_DIR/$name" "$role" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    PIDS[$name]=$!
    wait_port "${PORTS[$name]}" 60 "${PIDS[$name]}" || die "$name did not start; see $LOG_DIR/$name.log"
}
# shellcheck disable=SC2317 # also runs from the EXIT trap
stop_service() {
    local pid=${PIDS[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 20 || kill -KILL "$pid" 2>/dev/null || true
    unset "PIDS[$1]"
}
kill_service() {
    log "fault: kill -9 $1"
    kill -KILL "${PIDS[$1]}" 2>/dev/null || true
    wait "${PIDS[$1]}" 2>/dev/null || true
    unset "PIDS[$1]"
    sleep 1
    start_service "$1"
}
restart_rabbitmq() {
    log "fault: RabbitMQ restarts"
    "$SCRIPT_DIR/rabbitmq-node.sh" restart "$KITCHEN_RABBITMQ_NODE" "$AMQP_PORT" 2>>"$LOG_DIR/faults.log"
}
restart_postgres() {
    log "fault: PostgreSQL restarts (immediate shutdown)"
    su postgres -s /bin/bash -c "$(printf '%q ' "$PG_BIN/pg_ctl" restart -m immediate -w -t 60 -D "$DIR/pg" -l "$DIR/logs/postgresql.log")" \
        >>"$LOG_DIR/faults.log" 2>&1 </dev/null || die "PostgreSQL did not come back"
}
start_service auth
start_service tracker
start_service sync-worker

# 2. The load, and the faults under it.
DB=${DATABASE_URL%/*}
"$BIN_DIR/loadgen" chaos --orders "$ORDERS" --pace "$PACE" \
    --tracker "http://127.0.0.1:${PORTS[tracker]}" --auth "http://127.0.0.1:${PORTS[auth]}" \
    --login chaos.admin --password-file "$PASSWORD_FILE" \
    --amqp "$KITCHEN_BUS_URL_CASHIER" --admin-amqp "$AMQP_URL" \
    --tracker-db "$DB/tracker" --legacy-db "$DB/legacy" --auth-db "$DB/auth" \
    >"$LOG_DIR/loadgen.log" 2>&1 &
LOADGEN=$!
FAULTS=(kill_sync_worker kill_tracker restart_rabbitmq restart_postgres)
kill_sync_worker() { kill_service sync-worker; }
kill_tracker() { kill_service tracker; }
faults=0
selling() { kill -0 "$LOADGEN" 2>/dev/null && ! grep -qs 'settling' "$LOG_DIR/loadgen.log"; }
while selling; do
    sleep $((3 + RANDOM % 4))
    selling || break
    if [[ $FORM == short ]] && ((faults >= ${#FAULTS[@]})); then
        continue
    fi
    "${FAULTS[faults % ${#FAULTS[@]}]}"
    faults=$((faults + 1))
done
status=0
wait "$LOADGEN" || status=$?
LOADGEN=""
cat "$LOG_DIR/loadgen.log"
log "$faults faults injected ($FORM form, $ORDERS orders)"
((status == 0)) || die "chaos: the counts are not all zero (or the driver failed); logs in $LOG_DIR"
log "chaos: passed"
