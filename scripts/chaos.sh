#!/usr/bin/env bash
# The fault-injection test (issue 12): orders, taps, cancellations and hand-overs while the
# sync worker and the tracker are killed with `kill -9` and RabbitMQ and PostgreSQL restart;
# then it counts orders lost, tracker and legacy states that differ, history rows applied
# twice, dead letters and unpublished outbox rows, prints them and fails on any that is not 0.
#
#   scripts/chaos.sh [short|long|replicas]
#       short (what `make test` runs, 1-2 minutes): 120 orders at 3 a second, one of each
#       fault. long (`make chaos`): 3,000 orders at 10 a second, a fault every 3-6 s until
#       they are all sold. replicas (also in `make test`, issue 9): a three-node RabbitMQ
#       cluster (nodes on AMQP_PORT, +1 and +2; CHAOS_AMQP_PORT2/3 move the last two) and two
#       instances each of auth, tracker, sync worker, devices and web, the a instances on the
#       first node and the b instances, which the load generator talks to, on the second;
#       240 orders at 3 a second while the second node is killed with `kill -9` and comes
#       back, then one instance of each service; it also checks that every order's legacy
#       history is in the tracker's order. CHAOS_ORDERS and CHAOS_PACE override the numbers.
#
# It runs on a durable stack of its own (PostgreSQL on 55435, RabbitMQ on 55676, in a temporary
# folder removed afterwards; CHAOS_PG_PORT / CHAOS_AMQP_PORT move them), never on one that
# DATABASE_URL or AMQP_URL name, because it restarts both. The services run as in `make run`,
# each as its own RabbitMQ user, from debug binaries (CHAOS_PROFILE=release for release ones).
# The driver and checker is `loadgen chaos` (loadgen/src/chaos.rs); it counts only once the
# script has injected its last fault, even when the orders were all sold before that.
# On failure the script prints the tail of every log it kept, then, last (CI shows the end),
# the load generator's counts and the reason.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"
cd "$ROOT"
# Each line says how far into the run it is: a fault that took long shows in CI's output.
LOG_SECONDS=1

FORM=${1:-short}
case $FORM in
    short) ORDERS=${CHAOS_ORDERS:-120} PACE=${CHAOS_PACE:-3} ;;
    long) ORDERS=${CHAOS_ORDERS:-3000} PACE=${CHAOS_PACE:-10} ;;
    replicas) ORDERS=${CHAOS_ORDERS:-240} PACE=${CHAOS_PACE:-3} ;;
    *) die "usage: $0 [short|long|replicas]" ;;
esac
PG_PORT=${CHAOS_PG_PORT:-55435}
AMQP_PORT=${CHAOS_AMQP_PORT:-55676}
AMQP_PORT2=${CHAOS_AMQP_PORT2:-$((AMQP_PORT + 1))}
AMQP_PORT3=${CHAOS_AMQP_PORT3:-$((AMQP_PORT + 2))}
NODE2=$(rmq_full_node "kitchen-$AMQP_PORT2") NODE3=$(rmq_full_node "kitchen-$AMQP_PORT3")
# The faults restart PostgreSQL and RabbitMQ nodes on these ports while the services connect out.
reserve_ports "$PG_PORT" "$AMQP_PORT" "$AMQP_PORT2" "$AMQP_PORT3" "$(rmq_dist_port "$AMQP_PORT")" \
    "$(rmq_dist_port "$AMQP_PORT2")" "$(rmq_dist_port "$AMQP_PORT3")"
PROFILE=${CHAOS_PROFILE:-debug}
BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE
DIR=$(mktemp -d "${KITCHEN_TEST_TMPDIR:-/tmp}/kitchen-chaos.XXXXXX")
chmod 755 "$DIR"
LOG_DIR=$DIR/logs
mkdir -p "$LOG_DIR"
SERVICES=(auth tracker sync-worker)
[[ $FORM != replicas ]] || SERVICES=(auth tracker sync-worker devices web)
# The instances: one of each service, or two (NAME-a, NAME-b) in the replicas form.
INSTANCES=("${SERVICES[@]}")
[[ $FORM != replicas ]] || INSTANCES=("${SERVICES[@]/%/-a}" "${SERVICES[@]/%/-b}")
declare -A PIDS=() PORTS=()
for name in "${INSTANCES[@]}"; do PORTS[$name]=0; done
LOADGEN=""
CLUSTER=0

# The last lines of this run's logs: the services', the cluster's and each RabbitMQ node's.
# shellcheck disable=SC2317 # runs from the EXIT trap
show_log_tails() {
    local file
    while IFS= read -r -d '' file; do
        [[ -s $file ]] || continue
        echo "----- ${file#"$DIR"/} (last 20 lines)" >&2
        tail -n 20 "$file" >&2
    done < <(find "$LOG_DIR" "$DIR" -maxdepth 4 -name '*.log' -type f -print0 2>/dev/null | sort -zu)
    df -h "$DIR" >&2 || true
    # Last, so that the end of the output says what failed: the driver's counts and the reason.
    if [[ -s $LOG_DIR/loadgen.log ]]; then
        echo "----- the load generator's last lines" >&2
        tail -n 25 "$LOG_DIR/loadgen.log" >&2
    fi
    # Why the run failed, repeated after the log tails: CI shows only the end of the output.
    log "chaos ($FORM) failed: ${DIED_WITH:-exit status $1}"
}

CLEANED=0
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$? name
    ((CLEANED)) && return 0
    CLEANED=1
    trap '' INT TERM HUP
    [[ -z $LOADGEN ]] || kill -TERM "$LOADGEN" 2>/dev/null || true
    for name in "${!PIDS[@]}"; do stop_service "$name"; done
    if ((CLUSTER)); then
        "$SCRIPT_DIR/rabbitmq-node.sh" stop "$NODE3" >>"$LOG_DIR/stop.log" 2>&1 || true
        "$SCRIPT_DIR/rabbitmq-node.sh" stop "$NODE2" >>"$LOG_DIR/stop.log" 2>&1 || true
    fi
    # Logged: a node that would not stop in time (rmq_stop says so) tells about a failed run.
    if "$SCRIPT_DIR/stack.sh" down "$DIR" >>"$LOG_DIR/stop.log" 2>&1 && ((rc == 0)); then
        rm -rf "$DIR"
    else
        log "kept $DIR (logs in $LOG_DIR)"
        # The caller may remove $DIR (make test removes its whole folder), so the failure's
        # evidence goes to the output too.
        ((rc == 0)) || show_log_tails "$rc"
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
    packages=()
    for name in "${SERVICES[@]}" loadgen; do packages+=(-p "$name"); done
    log "cargo build ${flags[*]} ${packages[*]} --bins"
    cargo build -q "${flags[@]}" "${packages[@]}" --bins
fi
# Copies of this build: the target folder may be shared, and another build must not swap a
# binary under the test.
mkdir -p "$DIR/bin"
for name in "${SERVICES[@]}" loadgen; do
    cp -f "$BIN_DIR/$name" "$DIR/bin/$name" || die "$BIN_DIR/$name not found"
done
BIN_DIR=$DIR/bin
# Durable as in production (fsync and synchronous_commit on): the faults include a PostgreSQL
# crash, and without them a crash loses commits that consumers have already acknowledged.
stack_env=$(env -u DATABASE_URL -u AMQP_URL -u RABBITMQ_MANAGEMENT_URL STACK_FAST=0 "$SCRIPT_DIR/stack.sh" up "$DIR" "$PG_PORT" "$AMQP_PORT")
eval "$stack_env"
export DATABASE_URL AMQP_URL
"$SCRIPT_DIR/stack.sh" createdb tracker legacy auth devices >/dev/null 2>&1
if [[ $FORM == replicas ]]; then
    # Two more nodes, joined to the first (they share the rabbitmq user's Erlang cookie), before
    # any service declares a queue: a quorum queue gets a member on every node of the cluster
    # it is declared in. The first node has the users (stack.sh made them) and they are the
    # cluster's.
    CLUSTER=1
    for node_port in "$NODE2 $AMQP_PORT2" "$NODE3 $AMQP_PORT3"; do
        read -r node port <<<"$node_port"
        "$SCRIPT_DIR/rabbitmq-node.sh" start "$DIR/${node%@*}" "$node" "$port" >/dev/null 2>>"$LOG_DIR/cluster.log"
        { rmqctl -q -n "$node" stop_app && rmqctl -q -n "$node" join_cluster "$KITCHEN_RABBITMQ_NODE" &&
            rmqctl -q -n "$node" start_app; } >>"$LOG_DIR/cluster.log" 2>&1 || die "$node did not join the cluster"
    done
    log "RabbitMQ cluster: $KITCHEN_RABBITMQ_NODE, $NODE2, $NODE3"
fi
export APP_DATABASE__URL=$DATABASE_URL APP_DEVELOPMENT=true RUST_LOG=${RUST_LOG:-warn}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
for name in "${!PORTS[@]}"; do PORTS[$name]=$(free_port); done
# Where instance $2 finds service $1: the instance of the same letter, or nothing if that
# service does not run here.
peer_url() {
    local port=${PORTS[$1${2#"${2%-[ab]}"}]:-}
    [[ -z $port ]] || printf 'http://127.0.0.1:%s' "$port"
}
steps=("tracker migrate" "sync-worker migrate" "auth migrate")
[[ $FORM != replicas ]] || steps+=("devices migrate")
for step in "${steps[@]}"; do
    # shellcheck disable=SC2086 # binary and sub-command
    "$BIN_DIR"/$step >>"$LOG_DIR/migrate.log" 2>&1 || die "$step failed; see $LOG_DIR/migrate.log"
done
PASSWORD_FILE=$DIR/admin.password
(umask 077 && random_password >"$PASSWORD_FILE")
"$BIN_DIR/auth" create-admin --login chaos.admin --display-name "Chaos" <"$PASSWORD_FILE" \
    >>"$LOG_DIR/create-admin.log" 2>&1 || die "auth create-admin failed"

start_service() {
    local name=$1 role=serve bus_var service=${1%-[ab]} bus_url
    [[ $service == sync-worker ]] && role=run
    bus_var=KITCHEN_BUS_URL_$(tr 'a-z-' 'A-Z_' <<<"$service")
    bus_url=${!bus_var}
    # The b instances on the second node.
    [[ $name != *-b ]] || bus_url=${bus_url/:$AMQP_PORT\//:$AMQP_PORT2\/}
    # The other services' addresses: the instance of the same letter, where there is one.
    local auth devices tracker sync ops=""
    auth=$(peer_url auth "$name") devices=$(peer_url devices "$name")
    # The web's second listener (/metrics), one per instance.
    [[ $service != web ]] || ops=$(free_port)
    tracker=$(peer_url tracker "$name") sync=$(peer_url sync-worker "$name")
    env APP_BUS__URL="$bus_url" APP_APPLICATION__PORT="${PORTS[$name]}" \
        ${auth:+APP_ACCESS__AUTH_URL=$auth} ${devices:+APP_DEVICE_ACCESS__DEVICES_URL=$devices} \
        ${tracker:+APP_UPSTREAM__TRACKER_URL=$tracker} ${auth:+APP_UPSTREAM__AUTH_URL=$auth} \
        ${devices:+APP_UPSTREAM__DEVICES_URL=$devices} ${sync:+APP_UPSTREAM__SYNC_WORKER_URL=$sync} \
        ${ops:+APP_OPS__PORT=$ops} \
        setsid "$BIN_DIR/$service" "$role" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
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
kill_rabbitmq_node() {
    local pid
    log "fault: kill -9 RabbitMQ node $NODE2"
    pid=$(rmq_os_pid "$NODE2") || die "$NODE2 is not running"
    kill -KILL "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 20 || die "$NODE2 did not die"
    sleep 2
    "$SCRIPT_DIR/rabbitmq-node.sh" start "$DIR/${NODE2%@*}" "$NODE2" "$AMQP_PORT2" >/dev/null 2>>"$LOG_DIR/faults.log" ||
        die "$NODE2 did not come back"
}
# The web's live updates across instances: a staff stream on each web instance (the a one just
# restarted) must get a change made through the a tracker (the pizzeria renamed), which reaches
# the webs only through the bus. Run after the last fault, before the load generator counts; a
# stream that gets nothing in 15 s fails it.
check_live_updates() {
    local token pizzeria name ok=0 streams=()
    token=$(curl -fsS -X POST -H 'content-type: application/json' \
        --data "{\"login\":\"chaos.admin\",\"password\":$(json_string "$(cat "$PASSWORD_FILE")")}" \
        "$(peer_url auth auth-b)/api/v1/sessions" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])') ||
        { log "live updates: cannot sign in"; return 1; }
    pizzeria=$(sed -n 's/^chaos: .* orders in pizzeria \([0-9a-f-]*\),.*/\1/p' "$LOG_DIR/loadgen.log")
    for name in web-a web-b; do
        curl -sN --max-time 15 -b "kitchen_staff_session=$token" \
            "http://127.0.0.1:${PORTS[$name]}/events?pizzeria=$pizzeria" >"$LOG_DIR/live-$name.log" 2>&1 &
        streams+=($!)
    done
    sleep 2
    curl -fsS -o /dev/null -X PUT -H "authorization: Bearer $token" -H 'content-type: application/json' \
        --data '{"name":"Chaos pizzeria, renamed through tracker-a"}' \
        "$(peer_url tracker tracker-a)/api/v1/pizzerias/$pizzeria" || { log "live updates: the rename failed"; return 1; }
    wait "${streams[@]}" || true
    for name in web-a web-b; do
        if grep -q '^data:' "$LOG_DIR/live-$name.log"; then
            log "live updates: $name's stream got $(grep -c '^data:' "$LOG_DIR/live-$name.log") changes"
        else
            log "live updates: $name's stream got nothing"
            ok=1
        fi
    done
    return "$ok"
}
restart_postgres() {
    log "fault: PostgreSQL restarts (immediate shutdown)"
    su postgres -s /bin/bash -c "$(printf '%q ' "$PG_BIN/pg_ctl" restart -m immediate -w -t 60 -D "$DIR/pg" -l "$DIR/logs/postgresql.log")" \
        >>"$LOG_DIR/faults.log" 2>&1 </dev/null || die "PostgreSQL did not come back"
}
# In order (auth before what checks staff against it); the a instances first, so that they lead
# every job and are active on every partition, and the faults below take that over.
for name in "${INSTANCES[@]}"; do start_service "$name"; done

# 2. The load, and the faults under it.
DB=${DATABASE_URL%/*}
extra=()
front=""
if [[ $FORM == replicas ]]; then
    extra=(--history-order)
    front=-b
fi
"$BIN_DIR/loadgen" chaos --orders "$ORDERS" --pace "$PACE" "${extra[@]}" \
    --tracker "http://127.0.0.1:${PORTS[tracker$front]}" --auth "http://127.0.0.1:${PORTS[auth$front]}" \
    --login chaos.admin --password-file "$PASSWORD_FILE" --wait-for "$DIR/faults-done" \
    --amqp "$KITCHEN_BUS_URL_CASHIER" --admin-amqp "$AMQP_URL" \
    --tracker-db "$DB/tracker" --legacy-db "$DB/legacy" --auth-db "$DB/auth" \
    >"$LOG_DIR/loadgen.log" 2>&1 &
LOADGEN=$!
FAULTS=(kill_sync_worker kill_tracker restart_rabbitmq restart_postgres)
kill_sync_worker() { kill_service sync-worker; }
kill_tracker() { kill_service tracker; }
if [[ $FORM == replicas ]]; then
    FAULTS=(kill_rabbitmq_node)
    for service in "${SERVICES[@]}"; do
        eval "kill_$service() { kill_service $service-a; }"
        FAULTS+=("kill_$service")
    done
fi
faults=0
selling() { kill -0 "$LOADGEN" 2>/dev/null && ! grep -qs 'settling' "$LOG_DIR/loadgen.log"; }
# The long form injects faults for as long as the load goes on. The others inject each fault
# once, all of them even when the orders have all been sold first (on a slow box the faults
# can outlast the 80 s of orders): the load generator waits for $DIR/faults-done before it
# counts, so the counts always come after every fault, and a run never proves less than it says.
more_faults() {
    kill -0 "$LOADGEN" 2>/dev/null || return 1
    if [[ $FORM == long ]]; then selling; else ((faults < ${#FAULTS[@]})); fi
}
while more_faults; do
    sleep $((3 + RANDOM % 4))
    more_faults || break
    "${FAULTS[faults % ${#FAULTS[@]}]}"
    faults=$((faults + 1))
done
live=1
[[ $FORM != replicas ]] || check_live_updates || live=0
touch "$DIR/faults-done"
status=0
wait "$LOADGEN" || status=$?
LOADGEN=""
cat "$LOG_DIR/loadgen.log"
log "$faults faults injected ($FORM form, $ORDERS orders)"
if [[ $FORM == replicas ]]; then
    # Every partition a quorum queue with a member on each of the three nodes.
    rmqctl -q -n "$KITCHEN_RABBITMQ_NODE" list_queues name type members --formatter json 2>/dev/null |
        python3 -c 'import json, sys
queues = [q for q in json.load(sys.stdin) if ".p" in q["name"]]
full = sum(1 for q in queues if q["type"] == "quorum" and len(q["members"]) == 3)
print(f"[chaos.sh] partitions: {len(queues)}, {full} of them quorum queues with members on all 3 nodes")' >&2 || true
    ((live == 1)) || die "chaos: the web's live updates were not seen on both instances"
fi
((status == 0)) || die "chaos: the counts are not all zero (or the driver failed); logs in $LOG_DIR"
[[ $FORM == long ]] || ((faults == ${#FAULTS[@]})) ||
    die "chaos: the load generator ended after $faults of ${#FAULTS[@]} faults"
log "chaos: passed"
