#!/usr/bin/env bash
# The browser end-to-end tests of the web UI (web/e2e), as `make test` runs them.
#
#   web/e2e/run.sh
#
# Needs DATABASE_URL (a PostgreSQL server URL) and AMQP_URL (an administrator), and each
# service's RabbitMQ user (KITCHEN_BUS_URL_TRACKER, ...), as scripts/test.sh exports them.
# E2E_FILES names the scenario files to run (default: every *.test.mjs here).
# Installs Debian's chromium and the npm packages if missing, builds the tracker, sync worker,
# auth, devices and web binaries (debug), creates throwaway databases (the legacy one too) and a
# RabbitMQ vhost of their own, starts the five services on free ports, runs the scenarios in headless Chromium (screenshots
# go to docs/screenshots/), then stops everything and drops the databases. Exits non-zero if a
# scenario failed.
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
log() { printf '[e2e] %s\n' "$*" >&2; }
die() { printf '[e2e] error: %s\n' "$*" >&2; exit 1; }

[[ -n ${DATABASE_URL:-} && -n ${AMQP_URL:-} ]] || die "DATABASE_URL and AMQP_URL must be set (scripts/test.sh sets them)"

# 1. Chromium and playwright-core (Playwright's own browser download does not work here).
if ! command -v chromium >/dev/null; then
    log "installing chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [[ ! -d $E2E_DIR/node_modules/playwright-core || ! -d $E2E_DIR/node_modules/amqplib ]]; then
    log "npm install (playwright-core, amqplib)"
    (cd "$E2E_DIR" && npm install --no-audit --no-fund --silent)
fi

# 2. The binaries.
BIN_DIR=${KITCHEN_E2E_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/debug}
if [[ ${KITCHEN_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build -p tracker -p sync-worker -p auth -p devices -p web --bins"
    cargo build -q -p tracker -p sync-worker -p auth -p devices -p web --bins
fi

RUN=$(mktemp -d /tmp/kitchen-e2e.XXXXXX)
SUFFIX=$(basename "$RUN" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')
PIDS=()
DBS=(tracker legacy auth devices)
cleanup() {
    local rc=$? pid
    trap '' INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for db in "${DBS[@]}"; do
        psql "$DATABASE_URL" -X -q -c "drop database if exists \"e2e_${db}_$SUFFIX\" with (force)" >/dev/null 2>&1 || true
    done
    [[ -z ${RMQ_API:-} ]] || rmq_api "$RMQ_API" "$RMQ_ADMIN" "$RMQ_ADMIN_PASSWORD" DELETE "vhosts/e2e-$SUFFIX" || true
    if ((rc != 0)); then
        log "failed; service logs kept in $RUN"
    else
        rm -rf "$RUN"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
TRACKER_PORT=$(free_port); AUTH_PORT=$(free_port); DEVICES_PORT=$(free_port); WEB_PORT=$(free_port)
SYNC_WORKER_PORT=$(free_port)
WEB_OPS_PORT=$(free_port)

for db in "${DBS[@]}"; do
    psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "create database \"e2e_${db}_$SUFFIX\"" >/dev/null
done

# A vhost of their own, where every service is its own RabbitMQ user (scripts/lib.sh).
RMQ_API=${RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:$(rmq_management_port "$(sed -E 's|.*:([0-9]+)/.*|\1|' <<<"$AMQP_URL")")}
RMQ_ADMIN=$(sed -E 's|^amqps?://([^:@]*).*|\1|' <<<"$AMQP_URL")
RMQ_ADMIN_PASSWORD=$(sed -E 's|^amqps?://[^:@]*:([^@]*)@.*|\1|' <<<"$AMQP_URL")
rmq_api "$RMQ_API" "$RMQ_ADMIN" "$RMQ_ADMIN_PASSWORD" PUT "vhosts/e2e-$SUFFIX" || die "cannot create a RabbitMQ vhost"
rmq_grant_users "$RMQ_API" "$RMQ_ADMIN" "$RMQ_ADMIN_PASSWORD" "e2e-$SUFFIX" kitchen || die "cannot grant the bus users"
bus_url() {
    local var
    var=KITCHEN_BUS_URL_$(tr 'a-z-' 'A-Z_' <<<"$1")
    [[ -n ${!var:-} ]] || die "$var is not set (scripts/stack.sh prints it)"
    printf '%s\n' "${!var%/*}/e2e-$SUFFIX"
}
for name in tracker sync-worker auth devices web cashier; do bus_url "$name" >/dev/null; done
export APP_DATABASE__URL=$DATABASE_URL
export APP_APPLICATION__HOST=127.0.0.1
# Throwaway services with the compiled-in demo keys.
export APP_DEVELOPMENT=true
export APP_ACCESS__AUTH_URL=http://127.0.0.1:$AUTH_PORT
export APP_DEVICE_ACCESS__DEVICES_URL=http://127.0.0.1:$DEVICES_PORT
export APP_OAUTH__VERIFICATION_URI=http://127.0.0.1:$WEB_PORT/activate
# Everything runs on 127.0.0.1: auth and devices believe the web's X-Forwarded-For.
export APP_OAUTH__INTERVAL_SECONDS=1 APP_NETWORK__TRUSTED_PROXIES=127.0.0.1
export APP_UPSTREAM__TRACKER_URL=http://127.0.0.1:$TRACKER_PORT
export APP_UPSTREAM__AUTH_URL=http://127.0.0.1:$AUTH_PORT
export APP_UPSTREAM__DEVICES_URL=http://127.0.0.1:$DEVICES_PORT
export APP_UPSTREAM__SYNC_WORKER_URL=http://127.0.0.1:$SYNC_WORKER_PORT
# The bus overview reads the management API as the read-only monitoring user (scripts/stack.sh
# exports it), in this vhost.
[[ -n ${RABBITMQ_MONITORING_PASSWORD:-} ]] || die "RABBITMQ_MONITORING_PASSWORD is not set (scripts/stack.sh prints it)"
export APP_OPERATIONS__MANAGEMENT_URL=$RMQ_API APP_OPERATIONS__VHOST=e2e-$SUFFIX
export APP_OPERATIONS__MANAGEMENT_USERNAME=${RABBITMQ_MONITORING_USER:-monitoring}
export APP_OPERATIONS__MANAGEMENT_PASSWORD=$RABBITMQ_MONITORING_PASSWORD
export RUST_LOG=${RUST_LOG:-info}

with_db() { APP_DATABASE__DATABASE_NAME=e2e_${1}_$SUFFIX "${@:2}"; }
step() { local name=$1; shift; "$@" >"$RUN/$name.log" 2>&1 </dev/null || { tail -n 30 "$RUN/$name.log" >&2; die "$name failed"; }; }

# 3. Migrate and seed: the demo pizzeria (tracker, auth) and a chain admin.
step migrate-tracker with_db tracker "$BIN_DIR/tracker" migrate
step migrate-legacy with_db legacy "$BIN_DIR/sync-worker" migrate
step migrate-auth with_db auth "$BIN_DIR/auth" migrate
step migrate-devices with_db devices "$BIN_DIR/devices" migrate
step seed-tracker with_db tracker "$BIN_DIR/tracker" seed-demo
step seed-auth with_db auth "$BIN_DIR/auth" seed-demo
ADMIN_PASSWORD=e2e-admin-$SUFFIX-password
step create-admin with_db auth "$BIN_DIR/auth" create-admin --login e2e.admin --display-name "Chain Admin" --password "$ADMIN_PASSWORD"
PIZZERIA_ID=$(sed -n 's/.*pizzeria_id=\([0-9a-fA-F-]\{36\}\).*/\1/p' "$RUN/seed-tracker.log" | head -n1)
[[ -n $PIZZERIA_ID ]] || die "tracker seed-demo printed no pizzeria_id"

# 4. The services.
start() {
    local name=$1 port=$2 db=$3
    shift 3
    log "starting $name on port $port"
    APP_APPLICATION__PORT=$port APP_DATABASE__DATABASE_NAME=e2e_${db}_$SUFFIX APP_BUS__URL=$(bus_url "$name") \
        "$BIN_DIR/$name" "$@" >"$RUN/$name.log" 2>&1 </dev/null &
    PIDS+=("$!")
}
start tracker "$TRACKER_PORT" tracker serve
start auth "$AUTH_PORT" auth serve
start devices "$DEVICES_PORT" devices serve
# The sync worker gives up quickly, so a scenario sees a transient failure dead-lettered.
cat >"$RUN/sync-worker.toml" <<'TOML'
[consumer]
retry_delays_ms = [200, 400]
max_attempts = 3
TOML
APP_CONFIG_FILE=$RUN/sync-worker.toml start sync-worker "$SYNC_WORKER_PORT" legacy run
APP_OPS__PORT=$WEB_OPS_PORT start web "$WEB_PORT" none serve
for port in "$TRACKER_PORT" "$SYNC_WORKER_PORT" "$AUTH_PORT" "$DEVICES_PORT" "$WEB_PORT"; do
    for i in $(seq 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        ((i == 150)) && { tail -n 30 "$RUN"/*.log >&2; die "nothing listens on $port"; }
        sleep 0.2
    done
done
# The web's live updates must be subscribed before the scenarios time the push path.
for i in $(seq 100); do
    curl -fsS "http://127.0.0.1:$WEB_PORT/health/ready" >/dev/null 2>&1 && break
    ((i == 100)) && die "web never became ready (live updates not subscribed); see $RUN/web.log"
    sleep 0.2
done

# 5. The scenarios.
log "running the browser scenarios"
export WEB_URL=http://127.0.0.1:$WEB_PORT TRACKER_URL=http://127.0.0.1:$TRACKER_PORT
export AUTH_URL=http://127.0.0.1:$AUTH_PORT PIZZERIA_ID ADMIN_LOGIN=e2e.admin ADMIN_PASSWORD
export INTAKE_KEY=${INTAKE_KEY:-dev-intake-key-change-me}
# The bus as the cashier's till, and the legacy database, for scenarios that publish raw
# messages or break and mend the legacy tables (operations.test.mjs).
export BUS_URL=$(bus_url cashier) BUS_EXCHANGE=kitchen LEGACY_DATABASE_URL=${DATABASE_URL%/*}/e2e_legacy_$SUFFIX
export SCREENSHOT_DIR=${SCREENSHOT_DIR:-$ROOT/docs/screenshots}
mkdir -p "$SCREENSHOT_DIR"
cd "$E2E_DIR"
# Every scenario file (each imports lib.mjs), one at a time: they share the demo pizzeria.
# E2E_FILES='offline.test.mjs' runs some of them while iterating.
# shellcheck disable=SC2086
node --test --test-concurrency=1 --test-reporter=spec ${E2E_FILES:-./*.test.mjs}
