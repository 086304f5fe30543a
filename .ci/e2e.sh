#!/usr/bin/env bash
# Runs the example SPA's end-to-end test (examples/spa/e2e) in headless Chromium against a
# freshly started service.
#
#   .ci/e2e.sh path/to/rs256-auth-binary
#
# Starts the binary from the repo root (it reads app.env there) on a free port, with an
# embedded SQLite store in a temporary folder, a 3 s access-token lifetime (the test waits
# for tokens to expire) and CLIENT_ORIGIN set to the SPA's origin; the test serves the SPA
# on another free port. Everything is stopped and removed on exit.
# Needs node/npm, curl and python3; installs Debian's chromium (apt-get) and the test's
# npm packages (npm ci) when they are missing.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 path/to/rs256-auth-binary" >&2
    exit 2
fi
if [[ ! -x $1 ]]; then
    echo "e2e.sh: $1 is not an executable file" >&2
    exit 2
fi
bin=$(realpath "$1")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
e2e=examples/spa/e2e

if [[ ! -x /usr/bin/chromium ]]; then
    echo "e2e.sh: installing chromium (apt-get)"
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
if [[ ! -d $e2e/node_modules ]]; then
    echo "e2e.sh: installing the test's packages (npm ci in $e2e)"
    npm ci --prefix "$e2e" --no-audit --no-fund
fi

log=$(mktemp "${TMPDIR:-/tmp}/rs256-auth-e2e.XXXXXX.log")
data_dir=$(mktemp -d "${TMPDIR:-/tmp}/rs256-auth-e2e.XXXXXX")
service_pid=

# Run by the EXIT trap (shellcheck 0.9 takes the body for unreachable: SC2317).
# shellcheck disable=SC2317
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

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
api_port=$(free_port)
spa_port=$(free_port)
while [[ $spa_port == "$api_port" ]]; do spa_port=$(free_port); done
# The browser uses localhost for both, so that they are the same site (cookies belong to
# a host, whatever the port); the service listens on 127.0.0.1, which localhost reaches.
api_url="http://localhost:$api_port"

echo "e2e.sh: starting $bin on $api_url (embedded store in $data_dir)"
env -u REDIS_URL -u REDIS_CLUSTER_URLS -u DATABASE_URL \
    -u ACCESS_TOKEN_MAXAGE -u REFRESH_TOKEN_MAXAGE -u COOKIE_DOMAIN \
    DATABASE_URL="sqlite:$data_dir/rs256-auth.db" \
    PORT="$api_port" \
    HOST=127.0.0.1 \
    CLIENT_ORIGIN="http://localhost:$spa_port" \
    ACCESS_TOKEN_EXPIRED_IN=3s \
    REFRESH_TOKEN_EXPIRED_IN=10m \
    COOKIE_SAMESITE=Lax \
    COOKIE_SECURE=false \
    RUST_LOG=info \
    "$bin" >"$log" 2>&1 &
service_pid=$!

ready=
for _ in $(seq 1 60); do
    if ! kill -0 "$service_pid" 2>/dev/null; then
        wait "$service_pid" && status=0 || status=$?
        service_pid=
        echo "e2e.sh: the service exited with status $status before it became ready" >&2
        show_log
        exit 1
    fi
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$api_port/api/healthchecker" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.5
done
if [[ -z $ready ]]; then
    echo "e2e.sh: the service did not answer /api/healthchecker within 30 s" >&2
    show_log
    exit 1
fi

status=0
API_URL=$api_url SPA_PORT=$spa_port E2E_EMAIL=ada@example.com \
    node "$e2e/spa.test.mjs" || status=$?
if [[ $status -ne 0 ]]; then
    echo "e2e.sh: the end-to-end test failed with status $status" >&2
    show_log
fi
exit "$status"
