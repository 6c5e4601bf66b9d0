#!/usr/bin/env bash
# `make test`: the workspace tests against a throwaway PostgreSQL + RabbitMQ.
#
#   scripts/test.sh [extra args for cargo nextest run / cargo test]
#
# Starts a stack in a fresh /tmp/kitchen-test.XXXXXX (PostgreSQL on 55432
# without fsync, RabbitMQ node kitchen-55672@localhost on 55672) unless
# DATABASE_URL and AMQP_URL are already set, and always removes it on exit.
# Tests get:
#   DATABASE_URL            postgres://postgres@127.0.0.1:55432/postgres
#                           (each test creates its own databases)
#   AMQP_URL                amqp://guest:guest@127.0.0.1:55672/%2f (an administrator:
#                           each test gets a vhost of its own, crates/testkit)
#   RABBITMQ_MANAGEMENT_URL http://127.0.0.1:15672 (the management API)
#   KITCHEN_BUS_URL_<SERVICE>  each service's own RabbitMQ user (scripts/stack.sh)
#   KITCHEN_RABBITMQ_NODE   kitchen-55672@localhost (the shared broker; never
#                           restart it: use scripts/rabbitmq-node.sh instead)
#   KITCHEN_REPO_ROOT       this repository
#   KITCHEN_TEST_TMPDIR     a folder removed after the run; nodes started by
#                           scripts/rabbitmq-node.sh under it are stopped
#                           after the run even if a test forgot to.
# Ports can be moved with KITCHEN_TEST_PG_PORT / KITCHEN_TEST_AMQP_PORT.
# Exits non-zero if anything failed.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"
cd "$ROOT"

PG_PORT=${KITCHEN_TEST_PG_PORT:-55432}
AMQP_PORT=${KITCHEN_TEST_AMQP_PORT:-55672}
TEST_DIR=""

# Stop RabbitMQ nodes that tests started under KITCHEN_TEST_TMPDIR and left running.
# shellcheck disable=SC2317 # runs from the EXIT trap
stop_stray_nodes() {
    local pidfile pid
    [[ -d $TEST_DIR/tmp ]] || return 0
    while IFS= read -r -d '' pidfile; do
        pid=$(live_pid_from_file "$pidfile") || continue
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == beam.smp ]] || continue
        log "stopping RabbitMQ node left by a test (pid $pid, $pidfile)"
        kill -TERM "$pid" 2>/dev/null || true
        wait_pid_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
    done < <(find "$TEST_DIR/tmp" -path '*/rabbitmq/pid' -type f -print0 2>/dev/null)
}

CLEANED=0
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$?
    ((CLEANED)) && return 0
    CLEANED=1
    trap '' INT TERM HUP
    if [[ -n $TEST_DIR ]]; then
        stop_stray_nodes
        if "$SCRIPT_DIR/stack.sh" down "$TEST_DIR"; then
            rm -rf "$TEST_DIR"
        else
            log "could not stop the test stack cleanly; kept $TEST_DIR for a look"
            rc=1
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ -n ${DATABASE_URL:-} && -n ${AMQP_URL:-} ]]; then
    log "using DATABASE_URL and AMQP_URL from the environment"
    export KITCHEN_TEST_TMPDIR=${KITCHEN_TEST_TMPDIR:-${TMPDIR:-/tmp}}
else
    TEST_DIR=$(mktemp -d /tmp/kitchen-test.XXXXXX)
    chmod 755 "$TEST_DIR"
    stack_env=$("$SCRIPT_DIR/stack.sh" up "$TEST_DIR" "$PG_PORT" "$AMQP_PORT" fast)
    eval "$stack_env"
    mkdir -p "$TEST_DIR/tmp"
    chmod 1777 "$TEST_DIR/tmp"
    export KITCHEN_TEST_TMPDIR=$TEST_DIR/tmp
fi
export DATABASE_URL AMQP_URL KITCHEN_RABBITMQ_NODE RABBITMQ_MANAGEMENT_URL
export KITCHEN_REPO_ROOT=$ROOT

status=0
failed=()
# One step of the suite: run, and remembered if it failed. The end of the output (often all that
# CI shows) then names every step that failed, not only the last one's logs.
step() {
    local rc=0
    "$@" || rc=$?
    ((rc == 0)) || { status=$rc; failed+=("$*"); }
}
# The monitoring files an operator deploys: Prometheus's own checker reads the scrape
# configuration and the alert rules it names (tests/system checks their metric names).
if ! command -v promtool >/dev/null 2>&1; then
    log "installing prometheus (for promtool) with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >/tmp/kitchen-apt-prometheus.log 2>&1 ||
        die "apt-get install prometheus failed; see /tmp/kitchen-apt-prometheus.log"
fi
log "promtool check config deploy/monitoring/prometheus.yml"
step promtool check config deploy/monitoring/prometheus.yml
# The image, compose file and Kubernetes manifests: schemas offline, and every setting they
# set is one the service reads (docs/DEPLOYING.md).
log "scripts/check-deploy.sh"
step scripts/check-deploy.sh

if cargo nextest --version >/dev/null 2>&1; then
    log "cargo nextest run --workspace --no-fail-fast $*"
    step cargo nextest run --workspace --no-fail-fast "$@"
else
    log "cargo-nextest not found; cargo test --workspace --no-fail-fast $*"
    step cargo test --workspace --no-fail-fast "$@"
fi

# The HTTP APIs fuzzed from docs/openapi.yaml (schemathesis, a short run): no 5xx, and every
# answer as the document describes it. KITCHEN_SKIP_SCHEMATHESIS=1 leaves it out.
if [[ ${KITCHEN_SKIP_SCHEMATHESIS:-0} != 1 ]]; then
    log "scripts/schemathesis.sh (the APIs against docs/openapi.yaml)"
    step scripts/schemathesis.sh
fi

# Browser end-to-end tests (web/e2e, headless Chromium) against the same stack,
# even if the Rust tests failed. KITCHEN_SKIP_E2E=1 leaves them out.
if [[ ${KITCHEN_SKIP_E2E:-0} != 1 ]]; then
    log "web/e2e/run.sh (browser scenarios)"
    step web/e2e/run.sh
fi

# The short fault-injection test (scripts/chaos.sh; `make chaos` runs the long one), on a stack
# of its own because it restarts PostgreSQL and RabbitMQ. KITCHEN_SKIP_CHAOS=1 leaves it out.
if [[ ${KITCHEN_SKIP_CHAOS:-0} != 1 ]]; then
    log "scripts/chaos.sh short"
    step scripts/chaos.sh short
fi

# The multi-replica test (issue 9): a three-node RabbitMQ cluster and two instances of every
# service under load while one node and one instance of each are killed (scripts/chaos.sh
# replicas, 2-3 minutes), on the short one's ports (it has finished) and the two after its
# RabbitMQ port. KITCHEN_SKIP_REPLICAS=1 leaves it out.
if [[ ${KITCHEN_SKIP_REPLICAS:-0} != 1 ]]; then
    log "scripts/chaos.sh replicas"
    step scripts/chaos.sh replicas
fi

if ((status != 0)); then
    log "FAILED (exit status $status): ${#failed[@]} step(s) failed:"
    for name in "${failed[@]}"; do log "  $name"; done
fi
exit "$status"
