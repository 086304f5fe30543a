#!/usr/bin/env bash
# The load benchmark: HTTP scenarios with wrk on both stores, against the service's own
# CPU ceilings, written to bench/results/ (results.md, results.png, raw/).
#
#   bash bench/run.sh                 from the repository root
#
#   BENCH_BIN=path        measure this binary instead of building target/release
#   BENCH_DURATION=8      seconds per scenario
#   BENCH_CONNECTIONS=64  connections of the plain scenarios (login/register use 16,
#                         the login flood 32)
#   BENCH_THREADS=1       wrk threads per wrk process
#   BENCH_MODES="production embedded"   the passes to run
#   BENCH_PROFILE=1       also profile the server with perf (linux-perf) during me, refresh
#                         and login, into bench/results/profile-<pass>-<scenario>.txt; the
#                         sampling costs the server a few percent, so figures of such a run
#                         are a little lower
#
# The production pass needs Postgres on 127.0.0.1:5432 (user postgres, trust) and Redis on
# 127.0.0.1:6379; it creates a database and a key prefix of its own and removes both.
# Each pass starts the server like the CI scripts do (.ci/lib.sh), from the repository root.
# Exits non-zero if any scenario saw an error, after writing the results.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# The stores the CPU accounting counts are the local ones (cpu_snapshot), so the production
# pass uses them whatever PGHOST or REDIS_URL say.
PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres REDIS_URL=redis://127.0.0.1:6379
# shellcheck source=.ci/lib.sh
source .ci/lib.sh bench

duration=${BENCH_DURATION:-8}
duration=${duration%s}
connections=${BENCH_CONNECTIONS:-64}
wrk_threads=${BENCH_THREADS:-1}
modes=${BENCH_MODES:-production embedded}
hash_connections=16 # login and register: argon2 queues, more would only add latency
flood_connections=32
me_sessions=8
users=8
password="correct horse battery"

results=bench/results
raw=$results/raw

for n in "$duration" "$connections" "$wrk_threads"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION, BENCH_CONNECTIONS and BENCH_THREADS are whole numbers, not '$n'"
done
((connections >= wrk_threads)) || die "BENCH_CONNECTIONS must be at least BENCH_THREADS"
for mode in $modes; do
    [[ $mode == production || $mode == embedded ]] || die "BENCH_MODES: production or embedded, not $mode"
done

# --- tools ------------------------------------------------------------------------

missing=()
need() { command -v "$1" >/dev/null || missing+=("$2"); }
need wrk wrk
need gnuplot gnuplot-nox
need curl curl
need awk gawk
need gzip gzip
[[ ${BENCH_PROFILE:-} != 1 ]] || need perf linux-perf
if [[ " $modes " == *" production "* ]]; then
    need createdb postgresql-client
    need dropdb postgresql-client
    need pg_isready postgresql-client
    need redis-cli redis-tools
fi
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    die "missing tools; on Debian or Ubuntu: apt-get install ${missing[*]}"
fi
command -v cargo >/dev/null ||
    die "cargo is missing: install Rust from https://rustup.rs (it builds the service and benches/ceilings.rs)"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- cleanup ----------------------------------------------------------------------

# Server logs in memory when possible: the unknown route logs a line per request, and
# hundreds of MB written back to disk would slow the scenarios after it.
logdir=$(mktemp -d /dev/shm/rs256-bench.XXXXXX 2>/dev/null || mktemp -d "$lib_tmp/logs.XXXXXX")
flood_pid=''

# Ends the current pass: a background wrk, then the server and its store (.ci/lib.sh).
stop_pass() {
    # The flood is a subshell running wrk: end its wrk first.
    if [[ -n $flood_pid ]]; then
        pkill -P "$flood_pid" 2>/dev/null || true
        kill "$flood_pid" 2>/dev/null || true
        wait "$flood_pid" 2>/dev/null || true
        flood_pid=''
    fi
    service_stop
}

# Run on exit, before .ci/lib.sh stops the server and removes lib_tmp (shellcheck 0.9 takes
# the body for unreachable: SC2317).
# shellcheck disable=SC2317
cleanup() {
    stop_pass
    # The log of a pass that failed half-way.
    local log
    for log in "$logdir"/*.log; do
        [[ ! -e $log ]] || keep_log "$(basename "$log" .log)"
    done
    rm -rf "$logdir"
}
on_exit cleanup

# --- build and ceilings -----------------------------------------------------------

if [[ -n ${BENCH_BIN:-} ]]; then
    bin=$(realpath "$BENCH_BIN")
    [[ -x $bin ]] || die "BENCH_BIN=$BENCH_BIN is not an executable file"
else
    say "building the release binary"
    cargo build --release --locked
    bin=$root/target/release/rs256-auth
fi

# A run that fails leaves no figures of an earlier one beside its own.
rm -rf "$raw" "$results/results.md" "$results/results.png"
# Profiles are kept from the last run that made them.
[[ ${BENCH_PROFILE:-} != 1 ]] || rm -f "$results"/profile-*.txt
mkdir -p "$raw"

# Measured before the passes and again after them; the higher of the two counts. On a
# shared machine a neighbour can take CPU for a while, and a ceiling measured then would
# flatter the ratios.
measure_ceilings() {
    say "measuring the CPU ceilings (benches/ceilings.rs, about 6 s)"
    cargo bench --locked --bench ceilings >"$raw/ceilings-$1.txt"
    local name
    for name in sign_per_s argon2_per_s threads; do
        grep -q "^CEILING $name " "$raw/ceilings-$1.txt" || die "no CEILING $name in $raw/ceilings-$1.txt"
    done
}
measure_ceilings before

# --- the server ---------------------------------------------------------------------

# Starts the service for a pass, on a store of its own (.ci/lib.sh: service_pid, service_url).
start_server() {
    local mode=$1
    # Lifts the login limits out of the way: right-password floods from one IP.
    service_start --log "$logdir/$mode.log" "$mode" "$bin" \
        LOGIN_ATTEMPTS_LIMIT=1000000 LOGIN_ATTEMPTS_IP_LIMIT=1000000
}

# kB of VmHWM or VmRSS in /proc/<server>/status, as MB.
memory_mb() {
    awk -v field="$1:" '$1 == field { printf "%.0f", $2 / 1024 }' "/proc/$service_pid/status"
}

# --- seeding -------------------------------------------------------------------------

post_json() { # path body [curl args...]
    local path=$1 body=$2
    shift 2
    curl -sS -H 'Content-Type: application/json' -d "$body" "$@" "$service_url$path"
}

# Registers the users; writes their emails to $seed/users.
seed_users() {
    local i email status
    for ((i = 0; i < users; i++)); do
        email=user$i@example.com
        status=$(post_json /api/auth/register \
            "{\"name\":\"Bench $i\",\"email\":\"$email\",\"password\":\"$password\",\"passwordConfirm\":\"$password\"}" \
            -o /dev/null -w '%{http_code}')
        [[ $status == 201 ]] || die "register $email answered $status"
        echo "$email" >>"$seed/users"
    done
}

# One login: prints "access refresh" (access from the body, refresh from its cookie).
login_tokens() {
    local email=$1 out=$seed/login.$BASHPID access refresh
    post_json /api/auth/login "{\"email\":\"$email\",\"password\":\"$password\"}" \
        -D "$out.head" -o "$out.body"
    access=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' "$out.body")
    refresh=$(sed -n 's/^[Ss]et-[Cc]ookie: refresh_token=\([^;]*\);.*/\1/p' "$out.head")
    [[ -n $access && -n $refresh ]] || die "login $email failed: $(head -c 300 "$out.body")"
    echo "$access $refresh"
    rm -f "$out.head" "$out.body"
}

# Writes $count sessions to $file, logging in four at a time (argon2 runs on every core).
seed_sessions() {
    local file=$1 count=$2 i pids=() emails
    mapfile -t emails <"$seed/users"
    for ((i = 0; i < count; i++)); do
        login_tokens "${emails[i % ${#emails[@]}]}" >"$file.$i" &
        pids+=($!)
        if ((${#pids[@]} == 4)); then
            wait "${pids[@]}"
            pids=()
        fi
    done
    ((${#pids[@]} == 0)) || wait "${pids[@]}"
    for ((i = 0; i < count; i++)); do cat "$file.$i"; done >"$file"
    rm -f "$file".*
}

# --- where the CPU goes ---------------------------------------------------------------

clk_tck=$(getconf CLK_TCK)

# CPU seconds used so far by the given pids (utime + stime of /proc/<pid>/stat).
cpu_of() {
    local pid ticks=0
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        # Fields after the ")" that ends the command name: utime and stime are 12th and 13th.
        ticks=$((ticks + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')))
    done
    awk -v t="$ticks" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }'
}

# CPU seconds the whole machine has been busy (every state but idle and iowait).
cpu_busy() {
    awk -v hz="$clk_tck" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# "server stores machine" CPU seconds so far; the stores are every redis-server and
# postgres process (each connection of Postgres is one).
cpu_snapshot() {
    local -a stores
    mapfile -t stores < <(pgrep -x redis-server; pgrep -x postgres)
    echo "$(cpu_of "$service_pid") $(cpu_of "${stores[@]}") $(cpu_busy)"
}

# --- scenarios ------------------------------------------------------------------------

# wrk_run slug script connections path [VAR=value...]: one wrk run, its RESULT line kept
# in $pass_results with the server's memory after it.
wrk_run() {
    local slug=$1 script=$2 conns=$3 path=$4
    shift 4
    local threads=$((wrk_threads < conns ? wrk_threads : conns))
    local out=$raw/$mode-$slug.txt
    local before after perf_pid=''
    before=$(cpu_snapshot)
    if [[ ${BENCH_PROFILE:-} == 1 && $slug =~ ^(me_bearer|refresh|login)$ ]]; then
        perf record -F 499 -g -p "$service_pid" -o "$raw/$mode-$slug.perf" -- sleep "$run_seconds" \
            >/dev/null 2>&1 &
        perf_pid=$!
    fi
    env BENCH_WRK_DIR="$root/bench/wrk" BENCH_NAME="$slug" BENCH_THREADS="$threads" \
        BENCH_PASSWORD="$password" BENCH_USERS="$seed/users" "$@" \
        wrk -t"$threads" -c"$conns" -d"$run_seconds"s --timeout 10s --latency \
        -s "bench/wrk/$script.lua" "$service_url$path" >"$out" 2>&1
    local result
    result=$(grep '^RESULT ' "$out") || die "wrk printed no RESULT line for $slug; see $out"
    kill -0 "$service_pid" 2>/dev/null || die "the server died during $slug: $(tail -5 "$logdir/$mode.log")"
    after=$(cpu_snapshot)
    if [[ -n $perf_pid ]]; then
        wait "$perf_pid" || true
        perf report -i "$raw/$mode-$slug.perf" --no-children --sort dso,sym --percent-limit 1 \
            --stdio -g none 2>/dev/null | grep -v '^#' | grep . >"$results/profile-$mode-$slug.txt" || true
    fi
    echo "$result $(memory_mb VmRSS) $(memory_mb VmHWM) $(wc -l <"$logdir/$mode.log") $before $after $run_seconds" >>"$pass_results"
}

run_pass() {
    mode=$1
    pass_results=$raw/$mode.results
    seed=$lib_tmp/$mode-seed
    mkdir -p "$seed"
    : >"$pass_results"
    say "$mode pass: starting the server"
    start_server "$mode"
    local rss_started
    rss_started=$(memory_mb VmRSS)
    # Separate sessions per use: a refresh retires its access token 10 s later. refresh
    # needs one per connection, and a spare per thread (see bench/wrk/refresh.lua).
    local refresh_sessions=$((connections + wrk_threads))
    say "$mode pass: seeding $users users and $((me_sessions + refresh_sessions + connections)) sessions"
    seed_users
    seed_sessions "$seed/me" "$me_sessions"
    seed_sessions "$seed/refresh" "$refresh_sessions"
    seed_sessions "$seed/mixed" "$connections"
    local rss_seeded
    rss_seeded=$(memory_mb VmRSS)

    local c=$connections
    run_seconds=$duration
    say "$mode pass: scenarios of ${duration}s"
    wrk_run unknown get "$c" /no-such-route BENCH_EXPECT=404
    wrk_run health get "$c" /api/healthchecker
    wrk_run me_bearer me "$c" /api/users/me BENCH_TOKENS="$seed/me" BENCH_AUTH=bearer
    wrk_run me_cookie me "$c" /api/users/me BENCH_TOKENS="$seed/me" BENCH_AUTH=cookie
    wrk_run refresh refresh "$c" /api/auth/refresh BENCH_TOKENS="$seed/refresh"
    wrk_run mixed mixed "$c" /api/users/me BENCH_TOKENS="$seed/mixed"
    grep '^MIX ' "$raw/$mode-mixed.txt" | sed "s/^MIX/MIX $mode/" >>"$raw/mix.txt"
    wrk_run login login "$hash_connections" /api/auth/login
    wrk_run register register "$hash_connections" /api/auth/register

    # me while a second wrk floods login; the flood starts first and ends last, so it
    # covers the whole of the me run.
    run_seconds=$((duration + 2))
    wrk_run flood_login login "$flood_connections" /api/auth/login &
    flood_pid=$!
    sleep 1
    run_seconds=$duration
    wrk_run me_flood me "$c" /api/users/me BENCH_TOKENS="$seed/me" BENCH_AUTH=bearer
    wait "$flood_pid"
    flood_pid=''

    # Last, since each request counts against the client IP's failed-login counter, and the
    # mail queue works off the known address's requests (3 mails, the rest limited by the
    # per-address limit) in the background.
    wrk_run forgot_known forgot "$c" /api/auth/forgot-password BENCH_EMAIL="$(head -n 1 "$seed/users")"
    wrk_run forgot_unknown forgot "$c" /api/auth/forgot-password BENCH_EMAIL=nobody@example.com

    echo "$mode $(memory_mb VmHWM) $(memory_mb VmRSS) $rss_started $rss_seeded" >>"$raw/memory.txt"
    stop_pass
    keep_log "$mode"
}

# Keeps a pass's server log, compressed, and every distinct line (without its time and
# colours) with its count.
keep_log() {
    local log=$logdir/$1.log
    gzip -c "$log" >"$raw/$1-server.log.gz"
    sed 's/\x1b\[[0-9;]*m//g' "$log" | cut -d' ' -f2- | cut -c1-200 | sort | uniq -c |
        sort -rn >"$raw/$1-server-log-summary.txt"
    rm -f "$log"
}

: >"$raw/memory.txt"
: >"$raw/mix.txt"
started=$SECONDS
for mode in $modes; do
    run_pass "$mode"
done
elapsed=$((SECONDS - started))
measure_ceilings after
awk '$1 == "CEILING" { if (!($2 in best) || $3 + 0 > best[$2] + 0) best[$2] = $3 }
     END { for (name in best) print "CEILING", name, best[name] }' \
    "$raw/ceilings-before.txt" "$raw/ceilings-after.txt" >"$raw/ceilings.txt"

# --- results --------------------------------------------------------------------------

say "writing $results/results.md and results.png"
command_line="bash bench/run.sh"
for var in BENCH_MODES BENCH_THREADS BENCH_CONNECTIONS BENCH_DURATION BENCH_BIN; do
    [[ -z ${!var:-} ]] || command_line="$var=${!var} $command_line"
done
if commit=$(git rev-parse --short HEAD 2>/dev/null); then
    git diff --quiet HEAD -- . ':!bench/results' || commit="$commit + local changes"
else
    commit="(not a git checkout)"
fi
if [[ -n ${BENCH_BIN:-} ]]; then
    binary="\`$BENCH_BIN\` (BENCH_BIN; not built from this tree)"
else
    binary="target/release/rs256-auth, built from this tree"
fi
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
wrk_version=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 { print $1, $2 }')

{
    echo "# rs256-auth load benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- commit: $commit"
    echo "- server binary: $binary"
    echo "- machine: $(nproc) cores, $cpu, $(uname -sr); client and server share the cores; load average before the run: $load_before"
    echo "- load generator: $wrk_version, $wrk_threads thread(s) per wrk, ${duration}s per scenario, $connections connections ($hash_connections for login and register, $flood_connections for the login flood)"
    echo "- ceilings: benches/ceilings.rs built from this tree, the higher of two measurements (before and after the passes; raw/ceilings-*.txt)"
    echo "- command: \`$command_line\` (the passes took ${elapsed} s, the whole run $SECONDS s)"
    echo
    awk -f bench/report.awk -v passes="$modes" -v flood="$flood_connections" -v cores="$(nproc)" "$raw/ceilings.txt" "$raw/memory.txt" \
        "$raw/mix.txt" "$raw"/*.results
} >"$results/results.md"

awk -f bench/report.awk -v chart=1 -v passes="$modes" "$raw/ceilings.txt" "$raw"/*.results >"$raw/chart.dat"
# Labels hold spaces, but none of their words is a positive number.
top=$(awk '{ for (i = 1; i <= NF; i++) if ($i != "NaN" && $i + 0 > top) top = $i + 0 } END { print top + 1 }' "$raw/chart.dat")
colors=''
for mode in $modes; do
    colors="$colors $([[ $mode == production ]] && echo '#3060a0' || echo '#d08020')"
done
subtitle="server ${BENCH_BIN:-built from $commit}, $(date -u +%Y-%m-%d), $(nproc) cores"
gnuplot -e "datafile='$raw/chart.dat'; outfile='$results/results.png'; cols=$(($(wc -w <<<"$modes") + 1)); colors='$colors'; top=$top; subtitle='$subtitle'" bench/chart.gp

cat "$results/results.md"
if awk '$1 == "RESULT" && $6 > 0 { failed = 1 } END { exit !failed }' "$raw"/*.results; then
    say "some scenarios had errors (FAIL above); the raw wrk output is in $raw/"
    exit 1
fi
