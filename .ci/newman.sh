#!/usr/bin/env bash
# Runs postman_collection.json with newman against a freshly started service.
#
#   .ci/newman.sh path/to/rs256-auth-binary [embedded|production]
#
# Starts the binary from the repo root (it reads app.env there) on a free port,
# with stores of its own, removed again on exit (.ci/lib.sh):
#   embedded (the default): a SQLite file in a temporary folder;
#   production: a Postgres database and a Redis key prefix of its own. Needs the
#     psql tools (pg_isready, createdb, dropdb) and redis-cli. Postgres and Redis are
#     taken from PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres), trust auth, and
#     REDIS_URL (from the environment, else redis://127.0.0.1:6379).
# Without SMTP_URL, the service writes its mail (the collection's forgot-password and
# resend requests make some) as .eml files into MAIL_DIR, which .ci/lib.sh points at the
# store's temporary folder: nothing is left in the checkout.
# Needs node/npm and curl in both modes.
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
# shellcheck source=.ci/lib.sh
source .ci/lib.sh newman.sh

newman=.ci/node_modules/.bin/newman
if [[ ! -x $newman ]]; then
    say "installing newman (npm ci in .ci)"
    npm ci --prefix .ci --no-audit --no-fund
fi

service_start "$mode" "$bin"

# --env-var sets an environment variable, which takes precedence over the
# collection variable baseUrl.
color=on
[[ -t 1 ]] || color=off
status=0
"$newman" run postman_collection.json --env-var "baseUrl=$service_url" --bail --color "$color" || status=$?
# On failure the exit (.ci/lib.sh) shows the service's log.
[[ $status -eq 0 ]] || say "newman failed with status $status"
exit "$status"
