#!/usr/bin/env bash
# Fuzzes a freshly started service with schemathesis, from its own OpenAPI description
# (/api/openapi.json): no answer may be a 5xx, every answer must match the description
# (status code, content type, headers and body schema), and a method that a path does not
# document must answer 405 with an Allow header.
#
#   .ci/schemathesis.sh path/to/rs256-auth-binary [more schemathesis run options]
#
# Starts the binary from the repo root (it reads app.env there) on a free port, with a
# throwaway embedded SQLite store, removed again on exit. Installs schemathesis (the version
# pinned in .ci/requirements-schemathesis.txt) into .ci/.venv when it is missing. Settings:
# .ci/schemathesis.toml. Needs python3 (with venv), curl.
#
# Environment: SCHEMATHESIS_EXAMPLES (examples per operation and phase, default 400: about a
# minute on two cores), SCHEMATHESIS_SEED (to replay a run: schemathesis prints its seed),
# SCHEMATHESIS_MORE_CHECKS (more checks, e.g. ",negative_data_rejection"; not in CI:
# positive_data_acceptance cannot pass on register, whose passwordConfirm must equal password,
# which JSON Schema cannot say, and lengths counted after trimming make rare false alarms for
# negative_data_rejection).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 path/to/rs256-auth-binary [more schemathesis run options]" >&2
    exit 2
fi
if [[ ! -x $1 ]]; then
    echo "schemathesis.sh: $1 is not an executable file" >&2
    exit 2
fi
bin=$(realpath "$1")
shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

venv=.ci/.venv
requirements=.ci/requirements-schemathesis.txt
schemathesis=$venv/bin/schemathesis
pinned=$(sed -n 's/^schemathesis==//p' "$requirements")
installed=$("$schemathesis" --version 2>/dev/null | sed -n 's/^schemathesis, version //p' || true)
if [[ $installed != "$pinned" ]]; then
    echo "schemathesis.sh: installing schemathesis $pinned into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
fi

log=$(mktemp "${TMPDIR:-/tmp}/rs256-auth-schemathesis.XXXXXX.log")
data_dir=$(mktemp -d "${TMPDIR:-/tmp}/rs256-auth-schemathesis.XXXXXX")
# Hypothesis keeps its files there rather than in .hypothesis/ of the repo.
export HYPOTHESIS_STORAGE_DIRECTORY=$data_dir/hypothesis
service_pid=

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

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
base_url="http://127.0.0.1:$port"

# The login limits (100 failures per client IP, 10 per email, in 15 minutes) would turn
# every later login of the run into 429, the logins that fetch the run's own tokens included
# (a fuzzed password change or account deletion counts as a failed login of the run's own
# email): the run raises both. The HTTP tests pin the limits themselves.
echo "schemathesis.sh: starting $bin on $base_url (embedded store in $data_dir)"
env -u REDIS_URL -u REDIS_CLUSTER_URLS -u DATABASE_URL -u METRICS_PORT \
    DATABASE_URL="sqlite:$data_dir/rs256-auth.db" \
    PORT="$port" \
    HOST=127.0.0.1 \
    LOGIN_ATTEMPTS_IP_LIMIT=1000000 \
    LOGIN_ATTEMPTS_LIMIT=1000000 \
    RUST_LOG=warn \
    "$bin" >"$log" 2>&1 &
service_pid=$!

ready=
for _ in $(seq 1 60); do
    if ! kill -0 "$service_pid" 2>/dev/null; then
        wait "$service_pid" && status=0 || status=$?
        service_pid=
        echo "schemathesis.sh: the service exited with status $status before it became ready" >&2
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
    echo "schemathesis.sh: the service did not answer $base_url/api/healthchecker within 30 s" >&2
    show_log
    exit 1
fi

# The account whose tokens the run sends (see .ci/schemathesis.toml).
export ST_EMAIL="schemathesis-$RANDOM$RANDOM@example.com"
export ST_PASSWORD="schemathesis password $RANDOM"
curl -fsS -o /dev/null --max-time 10 -H 'Content-Type: application/json' \
    -d "{\"name\": \"Schemathesis\", \"email\": \"$ST_EMAIL\", \"password\": \"$ST_PASSWORD\", \"passwordConfirm\": \"$ST_PASSWORD\"}" \
    "$base_url/api/auth/register"
# An admin, so that the admin routes answer more than 403.
env -u REDIS_URL -u REDIS_CLUSTER_URLS DATABASE_URL="sqlite:$data_dir/rs256-auth.db" \
    "$bin" users set-role "$ST_EMAIL" admin

seed=()
[[ -n ${SCHEMATHESIS_SEED:-} ]] && seed=(--seed "$SCHEMATHESIS_SEED")
color=()
[[ -t 1 ]] || color=(--no-color)

checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance
checks+=,unsupported_method,allow_header_conformance${SCHEMATHESIS_MORE_CHECKS:-}
status=0
"$schemathesis" --config-file .ci/schemathesis.toml run "$base_url/api/openapi.json" \
    --checks "$checks" \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-400}" \
    --generation-database none \
    --request-timeout 20 \
    "${seed[@]}" "${color[@]}" "$@" || status=$?
if [[ $status -ne 0 ]]; then
    echo "schemathesis.sh: schemathesis failed with status $status" >&2
    show_log
fi
exit "$status"
