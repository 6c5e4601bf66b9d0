#!/usr/bin/env bash
# `make run`: the whole kitchen order tracker on this machine.
#
#   scripts/run.sh          start PostgreSQL + RabbitMQ (.stack/run, ports
#                           55433/55673, fsync on), build, create databases,
#                           migrate, seed the demo, start the services, print
#                           the URLs and wait. Ctrl-C stops the services, then
#                           the stack; the data stays for the next run.
#   scripts/run.sh stop     stop what a `make run` left running (`make stop`).
#
# Environment:
#   KITCHEN_DATABASES   databases to create (set by the Makefile's DATABASES)
#   DATABASE_URL + AMQP_URL   if both set, use those servers, start no stack;
#                       then each service's RabbitMQ user must be given too:
#                       KITCHEN_BUS_URL_TRACKER, _SYNC_WORKER, _AUTH, _DEVICES, _WEB
#                       (scripts/lib.sh, rmq_bus_user_rules, lists their rights)
#   KITCHEN_RUN_DIR     default .stack/run
#   KITCHEN_BIN_DIR     default target/release
#   KITCHEN_SKIP_BUILD=1  do not run cargo build
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"
cd "$ROOT"

RUN_DIR=$(abs_path "${KITCHEN_RUN_DIR:-$ROOT/.stack/run}")
PG_PORT=55433
AMQP_PORT=55673
TRACKER_PORT=8081
SYNC_WORKER_PORT=8082
AUTH_PORT=8083
DEVICES_PORT=8084
WEB_PORT=8080
BIN_DIR=${KITCHEN_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
LOG_DIR=$RUN_DIR/logs
PID_DIR=$RUN_DIR/pids
SERVICES=(tracker sync-worker auth devices web)

# ------------------------------------------------------------------ stop ---

# Pid of a service we started, if it still runs that binary.
service_pid() {
    local name=$1 pid arg args=()
    pid=$(live_pid_from_file "$PID_DIR/$name.pid") || return 1
    mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || return 1
    for arg in "${args[@]:0:2}"; do
        if [[ $arg == "$name" || $arg == */"$name" ]]; then
            printf '%s\n' "$pid"
            return 0
        fi
    done
    return 1
}

# Is PID a live child of this script (a service started by this run)?
our_child() {
    local stat ppid
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    read -r _ ppid _ <<<"$stat"
    [[ $ppid == "$$" ]]
}

stop_services() {
    local name pid pids=()
    for name in "${SERVICES[@]}"; do
        pid=$(live_pid_from_file "$PID_DIR/$name.pid" || true)
        if [[ -n $pid ]] && { our_child "$pid" || pid=$(service_pid "$name"); }; then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for pid in "${pids[@]}"; do
        if ! wait_pid_gone "$pid" 20; then
            log "pid $pid did not stop in 20 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for name in "${SERVICES[@]}"; do rm -f "$PID_DIR/$name.pid"; done
}

if [[ ${1:-} == stop ]]; then
    stop_services
    "$SCRIPT_DIR/stack.sh" down "$RUN_DIR"
    exit 0
elif (($#)); then
    die "usage: $0 [stop]"
fi

# ------------------------------------------------------------------- run ---

read -r -a DATABASES <<<"${KITCHEN_DATABASES:-}"
((${#DATABASES[@]})) || die "KITCHEN_DATABASES is empty; run this through 'make run' (the list is DATABASES in the Makefile)"

OWN_STACK=1
if [[ -n ${DATABASE_URL:-} && -n ${AMQP_URL:-} ]]; then
    OWN_STACK=0
fi

CLEANED=0
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$?
    ((CLEANED)) && return 0
    CLEANED=1
    trap '' INT TERM HUP
    echo >&2
    log "shutting down"
    stop_services
    if ((OWN_STACK)); then
        "$SCRIPT_DIR/stack.sh" down "$RUN_DIR" || rc=1
        log "stack stopped; data kept in $RUN_DIR (make run starts it again)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

for port in "$TRACKER_PORT" "$SYNC_WORKER_PORT" "$AUTH_PORT" "$DEVICES_PORT" "$WEB_PORT"; do
    if port_open "$port"; then
        # Do not stop a stack that another `make run` is using.
        OWN_STACK=0
        die "port $port is already in use (a previous 'make run' still running? try 'make stop')"
    fi
done

mkdir -p "$LOG_DIR" "$PID_DIR"

# 1. PostgreSQL + RabbitMQ (fsync on: never lose an order).
stack_env=$(STACK_FAST=0 "$SCRIPT_DIR/stack.sh" up "$RUN_DIR" "$PG_PORT" "$AMQP_PORT")

# 2. Build (with the caller's environment, before the stack's URLs are exported).
if [[ ${KITCHEN_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release --bins"
    cargo build --release --bins
fi
for name in "${SERVICES[@]}"; do
    [[ -x $BIN_DIR/$name ]] || die "$BIN_DIR/$name not found"
done

eval "$stack_env"
export DATABASE_URL AMQP_URL
export APP_DATABASE__URL=$DATABASE_URL APP_BUS__URL=$AMQP_URL
# A demo on this machine: the compiled-in demo keys are allowed (a service outside development
# mode refuses to start with them).
export APP_DEVELOPMENT=true
export RUST_LOG=${RUST_LOG:-info}
# The web's bus overview reads the broker's management API (scripts/lib.sh serves it on the
# AMQP port - 40000).
export APP_OPERATIONS__MANAGEMENT_URL=${RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:$((AMQP_PORT - 40000))}
# ... as the read-only monitoring user stack.sh creates.
[[ -z ${RABBITMQ_MONITORING_PASSWORD:-} ]] || export APP_OPERATIONS__MANAGEMENT_USERNAME=${RABBITMQ_MONITORING_USER:-monitoring} \
    APP_OPERATIONS__MANAGEMENT_PASSWORD=$RABBITMQ_MONITORING_PASSWORD

# 3. Databases.
"$SCRIPT_DIR/stack.sh" createdb "${DATABASES[@]}"

# 4. Migrations. 5. Demo data.
run_step() {
    local logf=$LOG_DIR/$1.log
    shift
    log "$* (log: $logf)"
    if ! "$@" >"$logf" 2>&1 </dev/null; then
        tail -n 30 "$logf" >&2
        die "'$*' failed; see $logf"
    fi
}
run_step migrate-tracker "$BIN_DIR/tracker" migrate
run_step migrate-sync-worker "$BIN_DIR/sync-worker" migrate
run_step migrate-auth "$BIN_DIR/auth" migrate
run_step migrate-devices "$BIN_DIR/devices" migrate
run_step seed-demo "$BIN_DIR/tracker" seed-demo
PIZZERIA_ID=$(sed -n 's/.*pizzeria_id=\([0-9a-fA-F-]\{36\}\).*/\1/p' "$LOG_DIR/seed-demo.log" | head -n1)
# The demo pizzeria's staff, each with a fresh password (printed below, kept nowhere else).
run_step seed-auth "$BIN_DIR/auth" seed-demo
STAFF_LOGINS=$(sed -n 's/^login=\([^ ]*\) password=\(.*\)$/\1 \2/p' "$LOG_DIR/seed-auth.log")

# 6. Services, each in its own session: Ctrl-C reaches only this script,
# which then stops them in order.
start_service() {
    local name=$1 port=$2 pid bus_var
    shift 2
    # Each service on the bus as its own RabbitMQ user (stack.sh made them).
    bus_var=KITCHEN_BUS_URL_$(tr 'a-z-' 'A-Z_' <<<"$name")
    [[ -n ${!bus_var:-} ]] || die "$bus_var is not set: $name needs a RabbitMQ user of its own"
    log "starting $name $* on port $port (log: $LOG_DIR/$name.log)"
    APP_BUS__URL=${!bus_var} APP_APPLICATION__PORT=$port \
        setsid "$BIN_DIR/$name" "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    pid=$!
    printf '%s\n' "$pid" >"$PID_DIR/$name.pid"
    if ! wait_port "$port" 60 "$pid"; then
        tail -n 30 "$LOG_DIR/$name.log" >&2 || true
        die "$name did not listen on port $port; see $LOG_DIR/$name.log"
    fi
}
start_service tracker "$TRACKER_PORT" serve
start_service sync-worker "$SYNC_WORKER_PORT" run
# Auth and devices sit behind the web, which forwards the browser's address in
# X-Forwarded-For: sign-in throttling and the audit log (auth), and what an approver sees of a
# device and the code-entry budget (devices), key on the real client, not on the web. They
# believe the header only from the web's address (127.0.0.1 here).
APP_NETWORK__TRUSTED_PROXIES=127.0.0.1 start_service auth "$AUTH_PORT" serve
# Devices checks staff against auth, so it starts after it.
APP_NETWORK__TRUSTED_PROXIES=127.0.0.1 start_service devices "$DEVICES_PORT" serve
# The screens people look at, on one origin; they call the services above.
start_service web "$WEB_PORT" serve

# 7. Where to look: the web first, it is the place to open.
api=http://127.0.0.1:$TRACKER_PORT
web=http://127.0.0.1:$WEB_PORT
pz=${PIZZERIA_ID:-<pizzeria_id>}
# The demo key of the cashier's till (its digest is the tracker's default order_sources.cashier).
INTAKE_KEY=dev-intake-key-change-me
staff_password() { awk -v l="$1" '$1 == l {print $2}' <<<"$STAFF_LOGINS"; }
cat <<EOF

  Kitchen order tracker is running.

  Open $web   every screen is served from here
EOF
if [[ -n $STAFF_LOGINS ]]; then
    cat <<EOF
    Shift manager        demo.manager    password $(staff_password demo.manager)
    Kitchen staff        demo.kitchen1   password $(staff_password demo.kitchen1)
                         demo.kitchen2   password $(staff_password demo.kitchen2)
                         (new passwords on every 'make run'; kitchen staff check in at a tablet)
EOF
else
    log "warning: 'auth seed-demo' printed no logins; see $LOG_DIR/seed-auth.log"
fi
cat <<EOF
    A station tablet or the TV: open $web/device on it and approve its code
    as the shift manager ($web/activate).

  Place an order as the cashier's till does, with the demo intake key $INTAKE_KEY
  (an order's JSON: README, "Trying it by hand"):
    curl -s -X POST $api/api/v1/orders -H 'authorization: Bearer $INTAKE_KEY' \\
         -H 'content-type: application/json' -d @order.json

  Behind the web
  Tracker API          $api   (demo pizzeria $pz)
  Auth API             http://127.0.0.1:$AUTH_PORT   (sign in: POST /api/v1/sessions)
  Devices API          http://127.0.0.1:$DEVICES_PORT   (pair a device: POST /oauth/device_authorization)
  Sync worker health   http://127.0.0.1:$SYNC_WORKER_PORT/health/ready   (metrics: /metrics)
  PostgreSQL           $DATABASE_URL   (databases: ${DATABASES[*]})
  RabbitMQ (AMQP)      $AMQP_URL${KITCHEN_RABBITMQ_NODE:+   (node $KITCHEN_RABBITMQ_NODE)}
                       each service has a user of its own; the till publishes as
                       'cashier' (passwords: $RUN_DIR/rabbitmq-users)
  RabbitMQ management  ${RABBITMQ_MANAGEMENT_URL:-<not started>}   (read-only user 'monitoring')
  Logs                 $LOG_DIR/{web,tracker,sync-worker,auth,devices,seed-demo,seed-auth}.log
EOF
if ((OWN_STACK)); then
    cat <<EOF
                       $LOG_DIR/postgresql.log, $RUN_DIR/rabbitmq/log/
EOF
fi
[[ -n ${PIZZERIA_ID:-} ]] || log "warning: 'tracker seed-demo' printed no pizzeria_id=<uuid> line; see $LOG_DIR/seed-demo.log"
cat <<EOF

  Ctrl-C stops everything (data stays in $RUN_DIR).

EOF

# Wait until Ctrl-C, or until a service dies.
pids=()
for name in "${SERVICES[@]}"; do pids+=("$(cat "$PID_DIR/$name.pid")"); done
rc=0
wait -n "${pids[@]}" || rc=$?
for name in "${SERVICES[@]}"; do
    if ! service_pid "$name" >/dev/null; then
        log "$name exited (status $rc); last lines of $LOG_DIR/$name.log:"
        tail -n 30 "$LOG_DIR/$name.log" >&2 || true
    fi
done
exit 1
