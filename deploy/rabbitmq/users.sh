#!/usr/bin/env bash
# One-shot (the compose service `rabbitmq-users`): gives every service a RabbitMQ user of its
# own, with exactly the rights `make run` and `make test` give it (scripts/lib.sh,
# rmq_bus_user_rules), on the broker `rabbit@rabbitmq`. Passwords come from
# RABBITMQ_PASSWORD_<USER> (deploy/.env). Idempotent: run on every `docker compose up`.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. /kitchen/lib.sh
node=rabbit@rabbitmq
ctl() { rabbitmqctl -q -n "$node" "$@"; }
ctl await_startup --timeout 120
while read -r user tags configure write read topic_write topic_read; do
    var=RABBITMQ_PASSWORD_$(tr 'a-z-' 'A-Z_' <<<"$user")
    password=${!var:?set $var in deploy/.env}
    if ctl list_users | awk '{print $1}' | grep -qxF "$user"; then
        ctl change_password "$user" "$password"
    else
        ctl add_user "$user" "$password"
    fi
    [[ $tags != - ]] || tags=""
    # shellcheck disable=SC2086 # no tags: no argument
    ctl set_user_tags "$user" $tags
    ctl set_permissions -p / "$user" "$configure" "$write" "$read"
    ctl set_topic_permissions -p / "$user" kitchen "$topic_write" "$topic_read"
done < <(rmq_bus_user_rules kitchen)
echo "rabbitmq-users: done"
