#!/usr/bin/env bash
# Runs the example SPA's end-to-end test (examples/spa/e2e) in headless Chromium against a
# freshly started service.
#
#   .ci/e2e.sh path/to/rs256-auth-binary
#
# Starts the binary from the repo root (it reads app.env there) on a free port, with an
# embedded SQLite store in a temporary folder, a 3 s access-token lifetime (the test waits
# for tokens to expire), CLIENT_ORIGIN and APP_URL set to the SPA's origin, and its mail
# sent to SMTP_URL=smtp://127.0.0.1:<a free port>, where the test itself receives it (an
# SMTP server of the npm package smtp-server); the test serves the SPA on another free
# port. REQUIRE_VERIFIED_EMAIL=true: the test signs in before verifying. Everything is
# stopped and removed on exit (.ci/lib.sh).
# Needs node/npm and curl; installs Debian's chromium (apt-get), the test's npm packages and
# the SPA's (its QR code encoder) with npm ci when they are missing or out of date.
#
# The test's screenshot of the signed-in view goes to target/e2e/screenshot.png (ignored by
# git): it differs a little from run to run (the sessions' times), so a run must not rewrite
# the committed examples/spa/screenshot.png. To update that one on purpose:
#
#   E2E_SCREENSHOT=examples/spa/screenshot.png bash .ci/e2e.sh target/debug/rs256-auth
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
# A relative E2E_SCREENSHOT is relative to where the script was started from.
if [[ -n ${E2E_SCREENSHOT:-} ]]; then
    E2E_SCREENSHOT=$(realpath -m "$E2E_SCREENSHOT")
    export E2E_SCREENSHOT
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=.ci/lib.sh
source .ci/lib.sh e2e.sh
e2e=examples/spa/e2e

if [[ ! -x /usr/bin/chromium ]]; then
    say "installing chromium (apt-get)"
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
# npm ci where the packages are missing or older than the lock file (a checkout that added
# one since the last install): the test's own, and the SPA's QR code encoder.
npm_ci_when_stale() { # npm_ci_when_stale FOLDER WHAT
    local installed=$1/node_modules/.package-lock.json
    if [[ ! -f $installed || $1/package-lock.json -nt $installed ]]; then
        say "installing $2 (npm ci in $1)"
        npm ci --prefix "$1" --no-audit --no-fund
    fi
}
npm_ci_when_stale "$e2e" "the test's packages"
npm_ci_when_stale examples/spa "the SPA's QR code encoder"

# The SPA's and the test's SMTP ports come first: the service's settings name them. The
# service sends no mail before the test registers, by which time the SMTP server listens.
spa_port='' smtp_port=''
pick_free_port spa_port
pick_free_port smtp_port
service_start embedded "$bin" \
    -u ACCESS_TOKEN_MAXAGE -u REFRESH_TOKEN_MAXAGE -u COOKIE_DOMAIN -u MAIL_FROM \
    -u EMAIL_TOKEN_TTL_RESET -u EMAIL_TOKEN_TTL_VERIFY \
    CLIENT_ORIGIN="http://localhost:$spa_port" \
    APP_URL="http://localhost:$spa_port" \
    SMTP_URL="smtp://127.0.0.1:$smtp_port" \
    REQUIRE_VERIFIED_EMAIL=true \
    ACCESS_TOKEN_EXPIRED_IN=3s \
    REFRESH_TOKEN_EXPIRED_IN=10m \
    COOKIE_SAMESITE=Lax \
    COOKIE_SECURE=false \
    RUST_LOG=info
# The browser uses localhost for both, so that they are the same site (cookies belong to
# a host, whatever the port); the service listens on 127.0.0.1, which localhost reaches.
api_url="http://localhost:$service_port"

status=0
API_URL=$api_url SPA_PORT=$spa_port SMTP_PORT=$smtp_port E2E_EMAIL=ada@example.com \
    node "$e2e/spa.test.mjs" || status=$?
# On failure the exit (.ci/lib.sh) shows the service's log.
[[ $status -eq 0 ]] || say "the end-to-end test failed with status $status"
exit "$status"
