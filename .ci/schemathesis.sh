#!/usr/bin/env bash
# Fuzzes a freshly started service with schemathesis, from its own OpenAPI description
# (/api/openapi.json): no answer may be a 5xx, every answer must match the description
# (status code, content type, headers and body schema), and a method that a path does not
# document must answer 405 with an Allow header.
#
#   .ci/schemathesis.sh path/to/rs256-auth-binary [more schemathesis run options]
#
# Starts the binary from the repo root (it reads app.env there) on a free port, with a
# throwaway embedded SQLite store, removed again on exit (.ci/lib.sh). Installs schemathesis
# (the version pinned in .ci/requirements-schemathesis.txt) into .ci/.venv when it is missing.
# Settings: .ci/schemathesis.toml. Needs python3 (with venv), curl. Nothing is written into
# the checkout but .ci/.venv: Hypothesis' files go to the temporary folder, the service's
# mail (.eml files, no SMTP_URL) to MAIL_DIR in the store's temporary folder (.ci/lib.sh),
# and schemathesis' cache (.schemathesis/) is off in .ci/schemathesis.toml.
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
# shellcheck source=.ci/lib.sh
source .ci/lib.sh schemathesis.sh

venv=.ci/.venv
requirements=.ci/requirements-schemathesis.txt
schemathesis=$venv/bin/schemathesis
pinned=$(sed -n 's/^schemathesis==//p' "$requirements")
installed=$("$schemathesis" --version 2>/dev/null | sed -n 's/^schemathesis, version //p' || true)
if [[ $installed != "$pinned" ]]; then
    say "installing schemathesis $pinned into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
fi

# Hypothesis keeps its files there rather than in .hypothesis/ of the repo.
export HYPOTHESIS_STORAGE_DIRECTORY=$lib_tmp/hypothesis

# The login limits (100 failures per client IP, 10 per email, in 15 minutes) would turn
# every later login of the run into 429, the logins that fetch the run's own tokens included
# (a fuzzed password change or account deletion counts as a failed login of the run's own
# email): the run raises both. The HTTP tests pin the limits themselves.
service_start embedded "$bin" \
    -u METRICS_PORT \
    LOGIN_ATTEMPTS_IP_LIMIT=1000000 \
    LOGIN_ATTEMPTS_LIMIT=1000000

# The account whose tokens the run sends (see .ci/schemathesis.toml).
export ST_EMAIL="schemathesis-$RANDOM$RANDOM@example.com"
export ST_PASSWORD="schemathesis password $RANDOM"
curl -fsS -o /dev/null --max-time 10 -H 'Content-Type: application/json' \
    -d "{\"name\": \"Schemathesis\", \"email\": \"$ST_EMAIL\", \"password\": \"$ST_PASSWORD\", \"passwordConfirm\": \"$ST_PASSWORD\"}" \
    "$service_url/api/auth/register"
# An admin, so that the admin routes answer more than 403.
service_cli users set-role "$ST_EMAIL" admin

seed=()
[[ -n ${SCHEMATHESIS_SEED:-} ]] && seed=(--seed "$SCHEMATHESIS_SEED")
color=()
[[ -t 1 ]] || color=(--no-color)

checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance
checks+=,unsupported_method,allow_header_conformance${SCHEMATHESIS_MORE_CHECKS:-}
status=0
"$schemathesis" --config-file .ci/schemathesis.toml run "$service_url/api/openapi.json" \
    --checks "$checks" \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-400}" \
    --generation-database none \
    --request-timeout 20 \
    "${seed[@]}" "${color[@]}" "$@" || status=$?
# On failure the exit (.ci/lib.sh) shows the service's log.
[[ $status -eq 0 ]] || say "schemathesis failed with status $status"
exit "$status"
