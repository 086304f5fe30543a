#!/usr/bin/env bash
# Runs postman_collection.json with newman against a freshly started service.
#
#   .ci/newman.sh path/to/rs256-auth-binary [embedded|production]
#
# Starts the binary from the repo root (it reads app.env there) on a free port,
# with stores of its own, removed again on exit:
#   embedded (the default): a SQLite file in a temporary folder;
#   production: a Postgres database and a Redis key prefix of its own. Needs the
#     psql tools (createdb, dropdb) and redis-cli. Postgres and Redis are taken from
#     PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres), trust auth, and
#     REDIS_URL (from the environment, else redis://127.0.0.1:6379).
# Needs node/npm, curl and python3 in both modes.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 path/to/rs256-auth-binary [embedded|production]" >&2
    exit 2
fi
mode=${2:-embedded}
if [[ $mode != embedded && $mode != production ]]; then
    echo "newman.sh: the mode is embedded or production, not $mode" >&2
    exit 2
fi
if [[ ! -x $1 ]]; then
    echo "newman.sh: $1 is not an executable file" >&2
    exit 2
fi
bin=$(realpath "$1")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}
pg_user=${PGUSER:-postgres}

redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
# The service accepts a bare host:port; redis-cli -u wants a URL.
case $redis_url in
    *://*) redis_cli_url=$redis_url ;;
    *) redis_cli_url=redis://$redis_url ;;
esac

newman=.ci/node_modules/.bin/newman
if [[ ! -x $newman ]]; then
    echo "newman.sh: installing newman (npm ci in .ci)"
    npm ci --prefix .ci --no-audit --no-fund
fi

suffix="$$_$RANDOM"
db="newman_$suffix"
redis_prefix="newman-$suffix:"
log=$(mktemp "${TMPDIR:-/tmp}/rs256-auth-newman.XXXXXX.log")
data_dir=$(mktemp -d "${TMPDIR:-/tmp}/rs256-auth-newman.XXXXXX")
service_pid=
db_created=

cleanup() {
    local rc=$?
    set +e
    if [[ -n $service_pid ]] && kill -0 "$service_pid" 2>/dev/null; then
        kill "$service_pid" 2>/dev/null
        for _ in $(seq 1 50); do
            kill -0 "$service_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$service_pid" 2>/dev/null
        wait "$service_pid" 2>/dev/null
    fi
    if [[ -n $db_created ]]; then
        dropdb -h "$pg_host" -p "$pg_port" -U "$pg_user" --if-exists --force "$db" ||
            echo "newman.sh: could not drop database $db" >&2
        redis-cli -u "$redis_cli_url" --scan --pattern "${redis_prefix}*" 2>/dev/null |
            xargs -r -n 100 redis-cli -u "$redis_cli_url" del >/dev/null ||
            echo "newman.sh: could not delete Redis keys ${redis_prefix}*" >&2
    fi
    rm -rf "$log" "$data_dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
    echo "----- service log (last 50 lines) -----" >&2
    tail -n 50 "$log" >&2 || true
    echo "----- end of service log -----" >&2
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
base_url="http://127.0.0.1:$port"

if [[ $mode == production ]]; then
    createdb -h "$pg_host" -p "$pg_port" -U "$pg_user" "$db"
    db_created=1
    stores=(DATABASE_URL="postgres://$pg_user@$pg_host:$pg_port/$db" REDIS_URL="$redis_url"
        REDIS_KEY_PREFIX="$redis_prefix")
    echo "newman.sh: starting $bin on $base_url (database $db, Redis prefix $redis_prefix)"
else
    stores=(DATABASE_URL="sqlite:$data_dir/rs256-auth.db")
    echo "newman.sh: starting $bin on $base_url (embedded store in $data_dir)"
fi
env -u REDIS_URL -u DATABASE_URL \
    "${stores[@]}" \
    PORT="$port" \
    HOST=127.0.0.1 \
    RUST_LOG=warn \
    "$bin" >"$log" 2>&1 &
service_pid=$!

ready=
for _ in $(seq 1 60); do
    if ! kill -0 "$service_pid" 2>/dev/null; then
        wait "$service_pid" && status=0 || status=$?
        service_pid=
        echo "newman.sh: the service exited with status $status before it became ready" >&2
        show_log
        exit 1
    fi
    if curl -fsS -o /dev/null --max-time 2 "$base_url/api/healthchecker" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.5
done
if [[ -z $ready ]]; then
    echo "newman.sh: the service did not answer $base_url/api/healthchecker within 30 s" >&2
    show_log
    exit 1
fi

# --env-var sets an environment variable, which takes precedence over the
# collection variable baseUrl.
color=on
[[ -t 1 ]] || color=off
status=0
"$newman" run postman_collection.json --env-var "baseUrl=$base_url" --bail --color "$color" || status=$?
if [[ $status -ne 0 ]]; then
    echo "newman.sh: newman failed with status $status" >&2
    show_log
fi
exit "$status"
