#!/usr/bin/env bash
# Private PostgreSQL 15 + RabbitMQ 3.10 for development and tests.
#
#   scripts/stack.sh up DIR PG_PORT AMQP_PORT [fast]
#       Start (or find running) a PostgreSQL cluster in DIR/pg on
#       127.0.0.1:PG_PORT and a RabbitMQ node kitchen-AMQP_PORT@localhost in
#       DIR/rabbitmq on 127.0.0.1:AMQP_PORT (Erlang distribution port
#       AMQP_PORT+10000, management API on AMQP_PORT-40000), with one RabbitMQ
#       user per service (passwords generated once, kept in DIR/rabbitmq-users).
#       Installs the packages with apt-get if missing.
#       "fast" (or STACK_FAST=1) starts PostgreSQL without fsync: tests only.
#       If DATABASE_URL and AMQP_URL are both set, starts nothing.
#       Prints, on stdout, lines to eval:
#         export DATABASE_URL=postgres://postgres@127.0.0.1:PG_PORT/postgres
#         export AMQP_URL=amqp://guest:guest@127.0.0.1:AMQP_PORT/%2f
#         export KITCHEN_RABBITMQ_NODE=kitchen-AMQP_PORT@localhost
#         export RABBITMQ_MANAGEMENT_URL=http://127.0.0.1:(AMQP_PORT-40000)
#         export RABBITMQ_MONITORING_USER=monitoring RABBITMQ_MONITORING_PASSWORD=...
#         export KITCHEN_BUS_URL_TRACKER=amqp://tracker:...@127.0.0.1:AMQP_PORT/%2f
#           (and _SYNC_WORKER, _AUTH, _DEVICES, _WEB, _CASHIER: each service's
#           APP_BUS__URL; AMQP_URL, the administrator guest, is for tests and tools)
#   scripts/stack.sh down DIR
#       Stop both (data stays in DIR).
#   scripts/stack.sh status DIR
#       Exit 0 if both run.
#   scripts/stack.sh createdb NAME...
#       Create the databases (if missing) on the server in DATABASE_URL.
#
# Progress goes to stderr, server logs to DIR/logs/postgresql.log and
# DIR/rabbitmq/log/.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

as_postgres() {
    su postgres -s /bin/bash -c "$1" </dev/null
}

# Port recorded by a running postmaster (line 4 of postmaster.pid).
pg_running_port() {
    sed -n 4p "$1/postmaster.pid" 2>/dev/null
}

pg_up() {
    local dir=$1 port=$2 fast=$3
    local data=$dir/pg sock=$dir/pg-run logf=$dir/logs/postgresql.log q
    mkdir -p "$dir/logs" "$sock"
    touch "$logf"
    chown postgres:postgres "$sock" "$logf"
    ensure_traversable "$sock/x"

    if [[ ! -f $data/PG_VERSION ]]; then
        if [[ -d $data ]] && [[ -n $(ls -A "$data") ]]; then
            die "$data exists but is not a PostgreSQL cluster; remove it"
        fi
        mkdir -p "$data"
        chown postgres:postgres "$data"
        chmod 700 "$data"
        log "initdb $data"
        as_postgres "$(printf '%q ' "$PG_BIN/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C.UTF-8)" \
            >>"$dir/logs/initdb.log" 2>&1 || die "initdb failed; see $dir/logs/initdb.log"
        printf "\n# Added by scripts/stack.sh\ninclude_if_exists = 'kitchen.conf'\n" >>"$data/postgresql.conf"
    fi

    # A unix socket path is limited to 107 bytes; skip the socket if DIR is too deep.
    local sockdirs=$sock
    if ((${#sock} + 20 > 100)); then sockdirs=""; fi
    # Rewritten on every start; fsync stays on here (see "fast" below).
    cat >"$data/kitchen.conf" <<EOF
# Written by scripts/stack.sh on every 'up'.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdirs'
max_connections = 400
shared_buffers = 256MB
EOF
    chown postgres:postgres "$data/kitchen.conf"

    if as_postgres "$(printf '%q ' "$PG_BIN/pg_ctl" status -D "$data")" >/dev/null 2>&1; then
        local running
        running=$(pg_running_port "$data")
        [[ $running == "$port" ]] ||
            die "PostgreSQL in $data already runs on port $running, not $port; run: $0 down $dir"
        log "PostgreSQL in $data already running on 127.0.0.1:$port"
        return 0
    fi
    port_open "$port" && die "port $port is already in use by another process; cannot start PostgreSQL there"

    local opts=""
    if [[ $fast == 1 ]]; then
        # Throwaway test cluster only: never used for `make run`.
        opts="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    log "starting PostgreSQL in $data on 127.0.0.1:$port${opts:+ (no fsync)} (log: $logf)"
    q=$(printf '%q ' "$PG_BIN/pg_ctl" start -w -t 60 -D "$data" -l "$logf" ${opts:+-o "$opts"})
    if ! as_postgres "cd / && $q" >>"$dir/logs/pg_ctl.log" 2>&1; then
        tail -n 20 "$logf" >&2 || true
        die "PostgreSQL did not start; see $logf"
    fi
}

pg_down() {
    local dir=$1 data=$1/pg
    [[ -f $data/PG_VERSION ]] || return 0
    if ! as_postgres "$(printf '%q ' "$PG_BIN/pg_ctl" status -D "$data")" >/dev/null 2>&1; then
        log "PostgreSQL in $data is not running"
        return 0
    fi
    log "stopping PostgreSQL in $data"
    mkdir -p "$dir/logs"
    as_postgres "cd / && $(printf '%q ' "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w -t 60)" >>"$dir/logs/pg_ctl.log" 2>&1 && return 0
    # Someone else may have stopped it meanwhile (a concurrent `down`).
    as_postgres "$(printf '%q ' "$PG_BIN/pg_ctl" status -D "$data")" >/dev/null 2>&1 || return 0
    log "PostgreSQL did not stop in 60 s; stopping it with -m immediate"
    as_postgres "cd / && $(printf '%q ' "$PG_BIN/pg_ctl" stop -D "$data" -m immediate -w -t 30)" >>"$dir/logs/pg_ctl.log" 2>&1 ||
        die "could not stop PostgreSQL in $data; see $dir/logs/pg_ctl.log"
}

print_env() {
    printf 'export DATABASE_URL=%q\n' "$1"
    printf 'export AMQP_URL=%q\n' "$2"
    [[ -z ${3:-} ]] || printf 'export KITCHEN_RABBITMQ_NODE=%q\n' "$3"
}

# The bus users' variables (see the top): from the password file of a stack we started, or
# passed through from the environment.
BUS_USERS=(tracker sync-worker auth devices web cashier)
print_bus_env() {
    local file=${1:-} port=${2:-} user var
    if [[ -n $file ]]; then
        printf 'export RABBITMQ_MANAGEMENT_URL=%q\n' "http://127.0.0.1:$(rmq_management_port "$port")"
        printf 'export RABBITMQ_MONITORING_USER=monitoring RABBITMQ_MONITORING_PASSWORD=%q\n' \
            "$(awk '$1 == "monitoring" {print $2}' "$file")"
    else
        for var in RABBITMQ_MANAGEMENT_URL RABBITMQ_MONITORING_USER RABBITMQ_MONITORING_PASSWORD; do
            [[ -z ${!var:-} ]] || printf 'export %s=%q\n' "$var" "${!var}"
        done
    fi
    for user in "${BUS_USERS[@]}"; do
        var=KITCHEN_BUS_URL_$(tr 'a-z-' 'A-Z_' <<<"$user")
        if [[ -n $file ]]; then
            printf 'export %s=%q\n' "$var" "$(rmq_user_url "$user" "$file" "$port")"
        elif [[ -n ${!var:-} ]]; then
            printf 'export %s=%q\n' "$var" "${!var}"
        fi
    done
}

node_name() { printf 'kitchen-%s@localhost\n' "$1"; }

cmd_up() {
    (($# >= 3 && $# <= 4)) || usage
    local dir=$1 pg_port=$2 amqp_port=$3 fast=${STACK_FAST:-0}
    case ${4:-} in
        "") ;;
        fast | --fast | 1) fast=1 ;;
        *) die "unknown option '$4' (expected: fast)" ;;
    esac
    is_port "$pg_port" || die "bad PG_PORT '$pg_port'"
    is_port "$amqp_port" || die "bad AMQP_PORT '$amqp_port'"

    if [[ -n ${DATABASE_URL:-} && -n ${AMQP_URL:-} ]]; then
        log "DATABASE_URL and AMQP_URL are set: using those servers, starting nothing"
        print_env "$DATABASE_URL" "$AMQP_URL" "${KITCHEN_RABBITMQ_NODE:-}"
        print_bus_env
        return 0
    fi

    need_root
    ensure_packages
    dir=$(abs_path "$dir")
    mkdir -p "$dir"
    chmod 755 "$dir"
    ensure_traversable "$dir/x"

    pg_up "$dir" "$pg_port" "$fast"
    local node
    node=$(node_name "$amqp_port")
    printf '%s\n' "$node" >"$dir/rabbitmq-node"
    local management
    management=$(rmq_management_port "$amqp_port") ||
        die "AMQP_PORT must be above 40000: the management API listens on AMQP_PORT-40000"
    rmq_start "$dir/rabbitmq" "$node" "$amqp_port" "" "$management"
    local api=http://127.0.0.1:$management
    rmq_wait_api "$api" guest guest || die "the management API did not answer on $api"
    rmq_create_users "$api" guest guest / kitchen "$dir/rabbitmq-users" ||
        die "could not create the bus users"

    print_env "postgres://postgres@127.0.0.1:$pg_port/postgres" \
        "amqp://guest:guest@127.0.0.1:$amqp_port/%2f" "$node"
    print_bus_env "$dir/rabbitmq-users" "$amqp_port"
}

cmd_down() {
    (($# == 1)) || usage
    local dir status=0
    dir=$(abs_path "$1")
    [[ -d $dir ]] || { log "$dir does not exist; nothing to stop"; return 0; }
    need_root
    if [[ -s $dir/rabbitmq-node ]]; then
        rmq_stop "$(cat "$dir/rabbitmq-node")" "$dir/rabbitmq/pid" || status=1
    fi
    pg_down "$dir" || status=1
    return "$status"
}

cmd_status() {
    (($# == 1)) || usage
    local dir ok=0
    dir=$(abs_path "$1")
    if as_postgres "$(printf '%q ' "$PG_BIN/pg_ctl" status -D "$dir/pg")" >/dev/null 2>&1; then
        echo "postgresql: running on port $(pg_running_port "$dir/pg")"
    else
        echo "postgresql: stopped"
        ok=1
    fi
    local pid
    if pid=$(live_pid_from_file "$dir/rabbitmq/pid"); then
        echo "rabbitmq: $(cat "$dir/rabbitmq-node") running (pid $pid)"
    else
        echo "rabbitmq: stopped"
        ok=1
    fi
    return "$ok"
}

cmd_createdb() {
    (($# >= 1)) || usage
    [[ -n ${DATABASE_URL:-} ]] || die "createdb needs DATABASE_URL (eval \"\$(scripts/stack.sh up ...)\")"
    command -v psql >/dev/null || die "psql not found (it comes with the postgresql package)"
    local name exists
    for name in "$@"; do
        exists=$(psql "$DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 -v name="$name" \
            <<<"SELECT 1 FROM pg_database WHERE datname = :'name';") ||
            die "cannot reach PostgreSQL at $DATABASE_URL"
        if [[ $exists == 1 ]]; then
            log "database $name exists"
            continue
        fi
        # Two callers may race; a duplicate error is fine if it exists afterwards.
        if ! psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -v name="$name" \
            <<<"CREATE DATABASE :\"name\";" >/dev/null 2>&1; then
            exists=$(psql "$DATABASE_URL" -X -q -At -v name="$name" \
                <<<"SELECT 1 FROM pg_database WHERE datname = :'name';" 2>/dev/null || true)
            [[ $exists == 1 ]] || die "could not create database $name"
        fi
        log "database $name created"
    done
}

main() {
    (($# >= 1)) || usage
    local cmd=$1
    shift
    case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        createdb) cmd_createdb "$@" ;;
        -h | --help | help) usage ;;
        *) log "unknown command '$cmd'"; usage ;;
    esac
}

main "$@"
