#!/usr/bin/env bash
# Fuzzes the tracker, auth and devices APIs from docs/openapi.yaml with schemathesis, as
# `make test` runs it (a short run):
#
#   scripts/schemathesis.sh
#
# Needs DATABASE_URL (a PostgreSQL server URL) and AMQP_URL, as scripts/test.sh exports them.
# Installs schemathesis with pip if `st` is missing, builds the three binaries (debug; skipped
# with KITCHEN_SKIP_BUILD=1), creates throwaway databases and an exchange of their own, seeds
# the demo pizzeria and a chain admin, starts the services on free ports, and runs
# schemathesis against each with the admin's session: every operation of the service's tag,
# positive and negative data. It fails on any 5xx and on any response the document does not
# describe (status, content type, body schema). Then it stops everything and drops the
# databases. SCHEMATHESIS_EXAMPLES (default 10) is the number of cases per operation and phase;
# SCHEMATHESIS_SEED fixes the seed to replay a failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '[schemathesis] %s\n' "$*" >&2; }
die() { printf '[schemathesis] error: %s\n' "$*" >&2; exit 1; }

[[ -n ${DATABASE_URL:-} && -n ${AMQP_URL:-} ]] || die "DATABASE_URL and AMQP_URL must be set (scripts/test.sh sets them)"

if ! command -v st >/dev/null 2>&1; then
    log "installing schemathesis with pip"
    python3 -m pip install --quiet schemathesis >/tmp/kitchen-pip-schemathesis.log 2>&1 ||
        die "pip install schemathesis failed; see /tmp/kitchen-pip-schemathesis.log"
    hash -r
fi

BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/debug
if [[ ${KITCHEN_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build -p tracker -p auth -p devices --bins"
    cargo build -q -p tracker -p auth -p devices --bins
fi

RUN=$(mktemp -d /tmp/kitchen-schemathesis.XXXXXX)
SUFFIX=$(basename "$RUN" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')
PIDS=()
DBS=(tracker auth devices)
cleanup() {
    local rc=$? pid
    trap '' INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for db in "${DBS[@]}"; do
        psql "$DATABASE_URL" -X -q -c "drop database if exists \"st_${db}_$SUFFIX\" with (force)" >/dev/null 2>&1 || true
    done
    if ((rc != 0)); then
        log "failed; service logs and reports kept in $RUN"
    else
        rm -rf "$RUN"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
TRACKER_PORT=$(free_port); AUTH_PORT=$(free_port); DEVICES_PORT=$(free_port)

for db in "${DBS[@]}"; do
    psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "create database \"st_${db}_$SUFFIX\"" >/dev/null
done

# The bus as AMQP_URL's user, on an exchange of their own: nothing here consumes what the
# services publish, so the per-service users the browser tests set up would check nothing more.
export APP_DATABASE__URL=$DATABASE_URL APP_BUS__URL=$AMQP_URL APP_BUS__EXCHANGE=st-$SUFFIX
export APP_APPLICATION__HOST=127.0.0.1
# Throwaway services with the compiled-in demo keys.
export APP_DEVELOPMENT=true
export APP_ACCESS__AUTH_URL=http://127.0.0.1:$AUTH_PORT
export APP_DEVICE_ACCESS__DEVICES_URL=http://127.0.0.1:$DEVICES_PORT
export APP_OAUTH__VERIFICATION_URI=http://127.0.0.1:9/activate
export RUST_LOG=${RUST_LOG:-warn}

with_db() { APP_DATABASE__DATABASE_NAME=st_${1}_$SUFFIX "${@:2}"; }
step() { local name=$1; shift; "$@" >"$RUN/$name.log" 2>&1 </dev/null || { tail -n 30 "$RUN/$name.log" >&2; die "$name failed"; }; }

step migrate-tracker with_db tracker "$BIN_DIR/tracker" migrate
step migrate-auth with_db auth "$BIN_DIR/auth" migrate
step migrate-devices with_db devices "$BIN_DIR/devices" migrate
step seed-tracker with_db tracker "$BIN_DIR/tracker" seed-demo
step seed-auth with_db auth "$BIN_DIR/auth" seed-demo
ADMIN_PASSWORD=st-admin-$SUFFIX-password
step create-admin with_db auth "$BIN_DIR/auth" create-admin --login st.admin --display-name "Chain Admin" --password "$ADMIN_PASSWORD"

start() {
    local name=$1 port=$2
    APP_APPLICATION__PORT=$port APP_DATABASE__DATABASE_NAME=st_${name}_$SUFFIX \
        "$BIN_DIR/$name" serve >"$RUN/$name.log" 2>&1 </dev/null &
    PIDS+=("$!")
}
start tracker "$TRACKER_PORT"
start auth "$AUTH_PORT"
start devices "$DEVICES_PORT"
for port in "$TRACKER_PORT" "$AUTH_PORT" "$DEVICES_PORT"; do
    for i in $(seq 150); do
        curl -fsS "http://127.0.0.1:$port/health/live" >/dev/null 2>&1 && break
        ((i == 150)) && { tail -n 30 "$RUN"/*.log >&2; die "nothing answers on $port"; }
        sleep 0.2
    done
done

# A fresh chain admin session for each run: the revocations of one run may end the last one.
sign_in() {
    curl -fsS -H 'Content-Type: application/json' \
        -d "{\"login\":\"st.admin\",\"password\":\"$ADMIN_PASSWORD\"}" \
        "http://127.0.0.1:$AUTH_PORT/api/v1/sessions" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

# Every check that compares a response with the document, plus no 5xx. The admin's own session
# must outlive the run, so the operations that end it (sign-out, "end all my sessions") are left
# out; the sign-in throttle would answer 429 to most sign-ins, which is documented but tells
# nothing, so sign-in is fuzzed with one worker only like the rest.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
status=0
RUNS=0
run() {
    local tag=$1 port=$2 token=$3
    shift 3
    [[ -n $token ]] || die "no token for the $tag run (cannot sign in as the chain admin?)"
    RUNS=$((RUNS + 1))
    log "st run docs/openapi.yaml against $tag (:$port) $*"
    st --no-color run docs/openapi.yaml \
        --url "http://127.0.0.1:$port" \
        "$@" \
        --header "Authorization: Bearer $token" \
        --checks "$CHECKS" \
        --phases examples,coverage,fuzzing \
        --max-examples "${SCHEMATHESIS_EXAMPLES:-10}" \
        ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
        --workers 1 \
        --request-timeout 10 \
        --report junit --report-dir "$RUN/report-$RUNS" \
        >"$RUN/st-$RUNS.log" 2>&1 || { status=1; tail -n 80 "$RUN/st-$RUNS.log" >&2; }
    grep -E 'Tested:|generated,|passed|failed' "$RUN/st-$RUNS.log" | tail -n 2 | sed 's/^ */    /' >&2
}
# Order intake takes an order source's key (the demo key of development mode), the rest a session.
INTAKE=placeOrder
REVOCATIONS=(revokeSession revokeUserSessions revokeMySessions logout)
for tag in ${SCHEMATHESIS_TAGS:-tracker intake auth devices}; do
    case $tag in
        tracker) run tracker "$TRACKER_PORT" "$(sign_in)" --include-tag tracker --exclude-operation-id "$INTAKE" ;;
        intake) run tracker "$TRACKER_PORT" dev-intake-key-change-me --include-operation-id "$INTAKE" ;;
        # Schemathesis feeds ids it saw in answers back into paths, so the revocations would
        # end the admin's own session: they go last, in a run of their own.
        auth)
            run auth "$AUTH_PORT" "$(sign_in)" --include-tag auth "${REVOCATIONS[@]/#/--exclude-operation-id=}"
            run auth "$AUTH_PORT" "$(sign_in)" "${REVOCATIONS[@]/#/--include-operation-id=}"
            ;;
        devices) run devices "$DEVICES_PORT" "$(sign_in)" --include-tag devices ;;
    esac
done
exit "$status"
