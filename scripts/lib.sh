# shellcheck shell=bash
# Shared helpers for scripts/stack.sh, scripts/rabbitmq-node.sh, scripts/run.sh
# and scripts/test.sh. Source it; do not run it.
#
# Everything here is written for Debian 12, run as root: PostgreSQL refuses to
# run as root, so it runs as `postgres`; the Debian `rabbitmq-server` and
# `rabbitmqctl` wrappers switch to the `rabbitmq` user by themselves (with
# `su`, which keeps the environment and sets HOME=/var/lib/rabbitmq, so the
# server and the CLI share /var/lib/rabbitmq/.erlang.cookie).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# "[script] message" on stderr; with LOG_SECONDS=1, "[script +Ns] message", N the seconds since
# the script started (a long run such as chaos.sh shows in CI's output what took long).
log() {
    local tag=${0##*/}
    [[ ${LOG_SECONDS:-0} != 1 ]] || tag+=" +${SECONDS}s"
    printf '[%s] %s\n' "$tag" "$*" >&2
}
# Exits 1 with the message, which stays in DIED_WITH for an EXIT trap that repeats it.
DIED_WITH=""
die() {
    DIED_WITH=$*
    log "error: $*"
    exit 1
}

is_port() { [[ ${1:-} =~ ^[0-9]+$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }

# True if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT SECONDS [PID]: wait until 127.0.0.1:PORT accepts connections.
# If PID is given and that process dies, give up early.
wait_port() {
    local port=$1 secs=$2 pid=${3:-} i
    for ((i = 0; i < secs * 5; i++)); do
        port_open "$port" && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

# wait_pid_gone PID SECONDS
wait_pid_gone() {
    local pid=$1 secs=$2 i
    for ((i = 0; i < secs * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    return 1
}

# Print the pid stored in FILE if that process is alive.
live_pid_from_file() {
    local file=$1 pid
    [[ -r $file ]] || return 1
    pid=$(head -n1 "$file" 2>/dev/null | tr -dc '0-9')
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

# Absolute path of DIR (which need not exist yet).
abs_path() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$PWD" "$1" ;;
    esac
}

# The postgres / rabbitmq users must be able to walk down to their folders:
# add o+x to every parent of PATH that lacks it (mktemp -d and Rust's tempfile
# create 0700 folders; /root is 0700).
ensure_traversable() {
    local p
    p=$(dirname "$(abs_path "$1")")
    while [[ $p != / && -n $p ]]; do
        if [[ -d $p && -z $(find "$p" -maxdepth 0 -perm -o=x) ]]; then
            chmod o+x "$p"
        fi
        p=$(dirname "$p")
    done
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (postgres and rabbitmq run as their own users)"
}

# Install postgresql / rabbitmq-server with apt-get, only if missing.
ensure_packages() {
    local want=()
    [[ -x $PG_BIN/initdb ]] || want+=(postgresql)
    # The RabbitMQ management API (users, test vhosts) is called with curl.
    command -v curl >/dev/null 2>&1 || want+=(curl)
    if ! command -v rabbitmq-server >/dev/null 2>&1 && [[ ! -x /usr/sbin/rabbitmq-server ]]; then
        want+=(rabbitmq-server)
    fi
    ((${#want[@]})) || return 0
    need_root
    log "installing ${want[*]} with apt-get (log: /tmp/kitchen-apt.log)"
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}"
    } >>/tmp/kitchen-apt.log 2>&1 </dev/null || die "apt-get install ${want[*]} failed; see /tmp/kitchen-apt.log"
    [[ -x $PG_BIN/initdb ]] || die "postgresql installed but $PG_BIN/initdb is missing"
}

# ---------------------------------------------------------------- RabbitMQ ---

# NAME or NAME@host -> NAME@host (defaults to @localhost).
rmq_full_node() {
    case $1 in
        *@*) printf '%s\n' "$1" ;;
        *) printf '%s@localhost\n' "$1" ;;
    esac
}

# rabbitmqctl / rabbitmq-diagnostics for a private node. The CLI tools start
# their own Erlang node; by default they all listen on 35672-35682, which
# allows only 11 CLI calls at once machine-wide. Port 0 lets the OS choose,
# so tests may call these in parallel. RABBITMQ_CONF_ENV_FILE=/dev/null keeps
# /etc/rabbitmq/rabbitmq-env.conf of a system node out of it.
rmq_cli() {
    local tool=$1
    shift
    env RABBITMQ_CTL_DIST_PORT_MIN=0 RABBITMQ_CTL_DIST_PORT_MAX=0 \
        RABBITMQ_CONF_ENV_FILE=/dev/null \
        "$tool" "$@" </dev/null
}
rmqctl() { rmq_cli rabbitmqctl "$@"; }

# OS pid of a running node (empty + failure if it does not answer).
rmq_os_pid() {
    rmqctl -q -n "$1" eval 'os:getpid().' 2>/dev/null | tr -dc '0-9'
}

# The management API's port for a node whose AMQP port is PORT: PORT - 40000
# (55672 -> 15672), or nothing if that is not a port.
rmq_management_port() {
    local port=$(($1 - 40000))
    is_port "$port" && printf '%s\n' "$port"
}

# The Erlang distribution port of a node whose AMQP port is PORT, unless one is given:
# PORT+10000, or PORT-10000 where that would pass 65535.
rmq_dist_port() {
    if (($1 + 10000 <= 65535)); then echo $(($1 + 10000)); else echo $(($1 - 10000)); fi
}

# reserve_ports PORT...: keep the kernel from giving these ports to outgoing connections as
# their local port. Our private servers listen on fixed ports inside the ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default), and a fault test restarts
# them under load: an outgoing connection made while one is down can take its port, and the
# server then cannot listen there again. Adds to the kernel's list (a reserved port is still
# free to listen on); as root only, and a no-op where the file cannot be written.
reserve_ports() {
    local file=/proc/sys/net/ipv4/ip_local_reserved_ports current list
    [[ -w $file ]] || return 0
    current=$(cat "$file")
    list=$(IFS=,; echo "$*")
    printf '%s\n' "${current:+$current,}$list" >"$file" 2>/dev/null || log "could not reserve ports $list"
}

# rmq_start BASE NODE AMQP_PORT [DIST_PORT [MANAGEMENT_PORT]]
# Start (or find already running) a private node whose files all live in BASE
# (owned by rabbitmq): mnesia/, log/, pid, enabled_plugins, rabbitmq.conf.
# With MANAGEMENT_PORT, the management plugin (its HTTP API on
# 127.0.0.1:MANAGEMENT_PORT: creating test vhosts, the operations page's queue
# figures) is enabled too; the consistent-hash exchange always is.
# Returns once the node accepts AMQP connections on 127.0.0.1:AMQP_PORT.
rmq_start() {
    local base node port dist pidfile pid management
    base=$(abs_path "$1")
    node=$(rmq_full_node "$2")
    port=$3
    dist=${4:-}
    management=${5:-}
    [[ -z $management ]] || is_port "$management" || die "bad management port: '$management'"
    is_port "$port" || die "bad AMQP port: '$port'"
    [[ -n $dist ]] || dist=$(rmq_dist_port "$port")
    is_port "$dist" || die "bad distribution port: '$dist'"
    pidfile=$base/pid

    need_root
    mkdir -p "$base/mnesia" "$base/log"
    # The consistent-hash exchange always: every durable consumer's queue is partitioned
    # over one (bus::topology).
    if [[ -n $management ]]; then
        printf '[rabbitmq_management,rabbitmq_consistent_hash_exchange].\n' >"$base/enabled_plugins"
    else
        printf '[rabbitmq_consistent_hash_exchange].\n' >"$base/enabled_plugins"
    fi
    [[ -s $base/advanced.config ]] || printf '[].\n' >"$base/advanced.config"
    : >"$base/rabbitmq-env.conf" # empty: never read /etc/rabbitmq/rabbitmq-env.conf
    cat >"$base/rabbitmq.conf" <<EOF
# Written by scripts/lib.sh for the private node $node; rewritten on every start.
# The listener (127.0.0.1:$port) comes from RABBITMQ_NODE_IP_ADDRESS/RABBITMQ_NODE_PORT.
loopback_users.guest = true
log.console = false
log.file.level = info
EOF
    if [[ -n $management ]]; then
        printf 'management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' "$management" >>"$base/rabbitmq.conf"
    fi
    chown -R rabbitmq:rabbitmq "$base"
    ensure_traversable "$base/mnesia"

    if pid=$(live_pid_from_file "$pidfile"); then
        log "RabbitMQ node $node already running (pid $pid)"
        rmqctl -q -n "$node" await_startup --timeout 60 >>"$base/log/ctl.log" 2>&1 ||
            die "RabbitMQ node $node (pid $pid) runs but does not finish booting; see $base/log/"
        wait_port "$port" 30 ||
            die "RabbitMQ node $node runs but nothing accepts AMQP on 127.0.0.1:$port (was it started with another port?)"
        return 0
    fi
    port_open "$port" && die "port $port is already in use by another process; cannot start RabbitMQ node $node there"
    port_open "$dist" && die "distribution port $dist is already in use; pass another one"
    [[ -z $management ]] || ! port_open "$management" ||
        die "management port $management is already in use; cannot start RabbitMQ node $node"
    rm -f "$pidfile"

    log "starting RabbitMQ node $node on 127.0.0.1:$port (logs: $base/log/)"
    # Not `rabbitmq-server -detached`: a detached node that fails early (bad
    # port, bad config) writes no log at all and `rabbitmqctl wait` only times
    # out after 60 s. In its own session in the background, its early output
    # lands in startup.log and we notice at once if it dies. The node ignores
    # SIGINT (RabbitMQ's default +B i) and outlives this script.
    local bg
    (
        export RABBITMQ_NODENAME=$node \
            RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
            RABBITMQ_NODE_PORT=$port \
            RABBITMQ_DIST_PORT=$dist \
            RABBITMQ_MNESIA_BASE=$base/mnesia \
            RABBITMQ_LOG_BASE=$base/log \
            RABBITMQ_ENABLED_PLUGINS_FILE=$base/enabled_plugins \
            RABBITMQ_PID_FILE=$pidfile \
            RABBITMQ_CONFIG_FILE=$base/rabbitmq.conf \
            RABBITMQ_ADVANCED_CONFIG_FILE=$base/advanced.config \
            RABBITMQ_CONF_ENV_FILE=$base/rabbitmq-env.conf \
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
            ERL_CRASH_DUMP=$base/log/erl_crash.dump
        # Debian's rabbitmq-server wrapper switches user with su, whose PAM session sets
        # the soft open-files limit to 1024: with a few hundred quorum queues and the
        # connections of a parallel test suite the node runs out of descriptors and stalls
        # every new connection and declaration. Switch user ourselves and raise the soft
        # limit to the hard one first (allowed without privileges).
        cd /var/lib/rabbitmq
        exec setsid su rabbitmq -s /bin/sh -c 'ulimit -n "$(ulimit -Hn)"; exec /usr/lib/rabbitmq/bin/rabbitmq-server'
    ) >>"$base/log/startup.log" 2>&1 </dev/null &
    bg=$!

    local i ok=0
    for ((i = 0; i < 300; i++)); do
        [[ -s $pidfile ]] && { ok=1; break; }
        kill -0 "$bg" 2>/dev/null || break
        sleep 0.2
    done
    if ((ok)) && rmqctl -n "$node" wait "$pidfile" --timeout 60 >>"$base/log/ctl.log" 2>&1; then
        :
    else
        log "RabbitMQ node $node did not start; last lines of its logs:"
        tail -n 15 "$base/log/startup.log" "$base/log/$node.log" >&2 2>/dev/null || true
        if pid=$(live_pid_from_file "$pidfile"); then kill -TERM "$pid" 2>/dev/null || true; fi
        kill -TERM "$bg" 2>/dev/null || true
        die "RabbitMQ node $node did not start (logs: $base/log/)"
    fi
    wait_port "$port" 30 || die "RabbitMQ node $node started but does not accept AMQP on 127.0.0.1:$port"
    log "RabbitMQ node $node is up"
}

# rmq_stop NODE [PIDFILE]: stop the node and wait until its process is gone.
rmq_stop() {
    local node pidfile=${2:-} pid=""
    node=$(rmq_full_node "$1")
    [[ -z $pidfile ]] || pid=$(live_pid_from_file "$pidfile") || true
    if [[ -z $pid ]]; then
        # No pid file (yet): the node may still be booting; ask it by name.
        pid=$(rmq_os_pid "$node") || true
        # With a pid file, only stop the node if it is the one that writes it
        # (another DIR may run a node of the same name).
        if [[ -n $pid && -n $pidfile ]] &&
            ! tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "RABBITMQ_PID_FILE=$pidfile"; then
            pid=""
        fi
        [[ -n $pid ]] || { log "RabbitMQ node $node is not running"; return 0; }
    fi
    log "stopping RabbitMQ node $node (pid $pid)"
    rmqctl -q -n "$node" stop >/dev/null 2>&1 || true
    if ! wait_pid_gone "$pid" 60; then
        log "RabbitMQ node $node did not stop in 60 s; killing pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        wait_pid_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
    fi
    [[ -z $pidfile ]] || rm -f "$pidfile"
}

# ------------------------------------------------------- RabbitMQ users ---

# The bus's users, one per service plus the cashier's till and a read-only monitor, and what
# each may do in a vhost whose exchange is EXCHANGE (docs: ARCHITECTURE.md, "Who may publish
# what"). One line per user, fields separated by spaces (no regex here holds one):
#   USER TAGS CONFIGURE WRITE READ TOPIC_WRITE TOPIC_READ   (TAGS "-": none)
# CONFIGURE/WRITE/READ are RabbitMQ's resource regexes (queues and exchanges), TOPIC_* the
# routing keys the user may publish (write) and bind (read) on EXCHANGE. A publisher declares
# the partitions of the consumers of what it publishes (so nothing is unroutable): a consumer's
# consistent-hash exchange (`.hash`, bound from EXCHANGE, so read on EXCHANGE) and its
# partition queues (`.p<i>`, bound to it, so read on `.hash`), and may read none of them. A
# consumer declares and reads its own queues (partitions, retry, dead-letter, and the
# unpartitioned queue it drains), and every process that follows changes a server-named
# amq.gen-* queue of its own. Only the consumers (tracker-intake, legacy-sync, auth-pizzerias)
# may write to the default exchange (amq.default) and to their own `.hash`: their retries and
# replays go through them, and since that bypasses topic permissions, consumers also check
# `user_id`.
# `deploy/` states the same rules for compose and Kubernetes.
rmq_bus_user_rules() {
    local e=${1//./\\.}
    local intake="$e\\.tracker-intake" legacy="$e\\.legacy-sync" private='amq\.gen-.+'
    # Auth's queue of the tracker's pizzerias: new with partitions, so no unpartitioned queue.
    local pizzerias="$e\\.auth-pizzerias"
    # The history stream (bus::stream): only the sync worker declares, binds and reads it.
    local history="$e\\.history"
    # What a publisher declares of a consumer's partitions, and what it binds them to. The
    # consumer's unpartitioned queue (no suffix) stays in for one release, expand/contract:
    # the previous release still declares it while a rolling deploy runs (docs/DEPLOYING.md).
    local parts='(\.(hash|p[0-9]+))?' hash='\.hash'
    printf '%s\n' \
        "tracker - ^($e|$intake(\\..+)?|$legacy$parts|$pizzerias$parts|$private)\$ ^($e|amq\\.default|$intake(\\..+)?|$legacy$parts|$pizzerias$parts|$private)\$ ^($e|$intake(\\..+)?|$legacy$hash|$pizzerias$hash|$private)\$ ^tracker\\. .*" \
        "sync-worker - ^($e|$legacy(\\..+)?|$history)\$ ^(amq\\.default|$legacy(\\..+)?|$history)\$ ^($e|$legacy(\\..+)?|$history)\$ ^\$ .*" \
        "auth - ^($e|$legacy$parts|$pizzerias(\\..+)?|$private)\$ ^($e|amq\\.default|$legacy$parts|$pizzerias(\\..+)?|$private)\$ ^($e|$legacy$hash|$pizzerias(\\..+)?|$private)\$ ^auth\\. .*" \
        "devices - ^($e|$legacy$parts|$private)\$ ^($e|$legacy$parts|$private)\$ ^($e|$legacy$hash|$private)\$ ^devices\\. .*" \
        "web - ^($e|$private)\$ ^($private)\$ ^($e|$private)\$ ^\$ .*" \
        "cashier - ^($e|$intake$parts)\$ ^($e|$intake$parts)\$ ^($e|$intake$hash)\$ ^cashier\\. ^(cashier|site|contact-centre)\\.order\\.(placed|cancelled)\$" \
        "monitoring monitoring ^\$ ^\$ ^\$ ^\$ ^\$"
}

# A JSON string holding $1.
json_string() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# A fresh password: 24 URL-safe characters from the OS random source.
random_password() {
    head -c 18 /dev/urandom | base64 | tr '+/' '-_'
}

# rmq_create_users MANAGEMENT_URL ADMIN_USER ADMIN_PASSWORD VHOST EXCHANGE PASSWORD_FILE
# Creates (or updates) every user of rmq_bus_user_rules and grants them their rights in VHOST,
# through the management API (one HTTP call each; rabbitmqctl would take a second per call).
# Passwords are read from PASSWORD_FILE ("user password" lines, mode 600) or generated and
# added to it, so a restarted `make run` keeps them.
rmq_create_users() {
    local api=$1 admin=$2 admin_password=$3 vhost=$4 exchange=$5 file=$6
    local user tags password
    [[ -f $file ]] || (umask 077 && : >"$file")
    while read -r user tags _; do
        [[ $tags != - ]] || tags=""
        password=$(awk -v u="$user" '$1 == u {print $2}' "$file")
        if [[ -z $password ]]; then
            password=$(random_password)
            printf '%s %s\n' "$user" "$password" >>"$file"
        fi
        rmq_api "$api" "$admin" "$admin_password" PUT "users/$user" \
            "{\"password\":$(json_string "$password"),\"tags\":$(json_string "$tags")}" || return 1
    done < <(rmq_bus_user_rules "$exchange")
    rmq_grant_users "$api" "$admin" "$admin_password" "$vhost" "$exchange"
}

# rmq_grant_users MANAGEMENT_URL ADMIN_USER ADMIN_PASSWORD VHOST EXCHANGE
# Grants the users of rmq_bus_user_rules their rights in VHOST (which must exist), on the
# exchange EXCHANGE: how the browser tests give the services a vhost of their own.
rmq_grant_users() {
    local api=$1 admin=$2 admin_password=$3 vhost=$4 exchange=$5
    local user configure write read topic_write topic_read vh
    vh=$(printf '%s' "$vhost" | sed 's|%|%25|g; s|/|%2F|g')
    while read -r user _ configure write read topic_write topic_read; do
        rmq_api "$api" "$admin" "$admin_password" PUT "permissions/$vh/$user" \
            "{\"configure\":$(json_string "$configure"),\"write\":$(json_string "$write"),\"read\":$(json_string "$read")}" || return 1
        rmq_api "$api" "$admin" "$admin_password" PUT "topic-permissions/$vh/$user" \
            "{\"exchange\":$(json_string "$exchange"),\"write\":$(json_string "$topic_write"),\"read\":$(json_string "$topic_read")}" || return 1
    done < <(rmq_bus_user_rules "$exchange")
}

# rmq_api URL USER PASSWORD METHOD PATH [JSON]: one call to the management API.
rmq_api() {
    local api=$1 user=$2 password=$3 method=$4 path=$5 body=${6:-}
    curl -fsS -o /dev/null -u "$user:$password" -X "$method" \
        -H 'content-type: application/json' ${body:+--data "$body"} "$api/api/$path" ||
        { log "management API: $method /api/$path failed"; return 1; }
}

# Wait until the management API at URL answers (it starts a moment after AMQP).
rmq_wait_api() {
    local api=$1 user=$2 password=$3 i
    for ((i = 0; i < 150; i++)); do
        curl -fsS -o /dev/null -u "$user:$password" "$api/api/overview" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# The AMQP URL of USER (password from PASSWORD_FILE) on 127.0.0.1:PORT, default vhost.
rmq_user_url() {
    local user=$1 file=$2 port=$3 password
    password=$(awk -v u="$user" '$1 == u {print $2}' "$file")
    printf 'amqp://%s:%s@127.0.0.1:%s/%%2f\n' "$user" "$password" "$port"
}
