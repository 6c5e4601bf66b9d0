#!/usr/bin/env bash
# A throwaway RabbitMQ node for one integration test (e.g. one that restarts
# the broker to prove no event is lost, which the shared test broker cannot).
#
#   scripts/rabbitmq-node.sh start DIR NODENAME AMQP_PORT [DIST_PORT]
#       Start a private node; files go to DIR/rabbitmq (DIR is created; a 0700
#       temp dir is fine). Returns when 127.0.0.1:AMQP_PORT accepts AMQP.
#       NODENAME without "@host" gets "@localhost". DIST_PORT (Erlang
#       distribution) defaults to AMQP_PORT+10000, or AMQP_PORT-10000 if that
#       is above 65535.
#       If the node already runs from DIR, leaves it.
#   scripts/rabbitmq-node.sh restart NODENAME [AMQP_PORT]
#       rabbitmqctl stop_app + start_app (a real broker restart: connections
#       drop, durable and quorum queues survive), then waits until AMQP
#       accepts connections again (on AMQP_PORT if given, else on every
#       listener of the node).
#   scripts/rabbitmq-node.sh stop NODENAME
#       Stop the node and wait until its process is gone.
#
# Parallel calls are safe as long as each caller uses its own DIR, NODENAME
# and ports. Output: progress on stderr; nothing on stdout except for `start`,
# which prints "export AMQP_URL=..." and "export KITCHEN_RABBITMQ_NODE=...".
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

cmd_start() {
    (($# == 3 || $# == 4)) || usage
    local dir node
    dir=$(abs_path "$1")
    node=$(rmq_full_node "$2")
    need_root
    ensure_packages
    mkdir -p "$dir"
    rmq_start "$dir/rabbitmq" "$node" "$3" "${4:-}"
    printf 'export AMQP_URL=%q\n' "amqp://guest:guest@127.0.0.1:$3/%2f"
    printf 'export KITCHEN_RABBITMQ_NODE=%q\n' "$node"
}

cmd_restart() {
    (($# == 1 || $# == 2)) || usage
    local node port=${2:-} t0
    node=$(rmq_full_node "$1")
    [[ -z $port ]] || is_port "$port" || die "bad AMQP port '$port'"
    need_root
    t0=$SECONDS
    log "restarting RabbitMQ on node $node (stop_app + start_app)"
    rmqctl -q -n "$node" stop_app >/dev/null || die "stop_app failed on $node"
    # The old AMQP listener's socket can still be held for a moment after stop_app, and
    # start_app then fails with eaddrinuse (seen in `make chaos` after dozens of restarts):
    # try again for up to 20 s before calling the node broken.
    local attempt
    for attempt in $(seq 20); do
        rmqctl -q -n "$node" start_app >/dev/null 2>&1 && break
        ((attempt == 20)) && die "start_app failed on $node 20 times"
        log "start_app failed on $node (attempt $attempt); trying again in 1 s"
        sleep 1
    done
    rmqctl -q -n "$node" await_startup --timeout 60 >/dev/null || die "$node did not come back within 60 s"
    if [[ -n $port ]]; then
        wait_port "$port" 60 || die "$node is running but 127.0.0.1:$port does not accept connections"
    else
        rmq_cli rabbitmq-diagnostics -q -n "$node" check_port_connectivity >/dev/null ||
            die "$node is running but its listeners do not accept connections"
    fi
    log "RabbitMQ on node $node is back after $((SECONDS - t0)) s"
}

cmd_stop() {
    (($# == 1)) || usage
    need_root
    rmq_stop "$1"
}

main() {
    (($# >= 1)) || usage
    local cmd=$1
    shift
    case $cmd in
        start) cmd_start "$@" ;;
        restart) cmd_restart "$@" ;;
        stop) cmd_stop "$@" ;;
        -h | --help | help) usage ;;
        *) log "unknown command '$cmd'"; usage ;;
    esac
}

main "$@"
