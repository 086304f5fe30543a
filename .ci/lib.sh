# shellcheck shell=bash
# Starting the built service for a test or a measurement, and cleaning up after it: shared by
# .ci/newman.sh, .ci/schemathesis.sh, .ci/e2e.sh and bench/run.sh. Sourced, not run:
#
#   source .ci/lib.sh NAME
#
# NAME (e.g. newman.sh, bench) begins every message; NAME without .sh names the temporary
# folder, the Postgres database and the Redis key prefix. Sourcing sets the EXIT, INT and
# TERM traps and makes lib_tmp, a temporary folder of the script's own. Then:
#
#   service_start [--log FILE] embedded|production BINARY [-u VAR | VAR=value]...
#       Starts BINARY in the current directory (the repository root: the service reads
#       app.env there) on a free port of 127.0.0.1, with a store of its own, and waits until
#       GET /api/healthchecker answers (30 s at most). Sets service_pid, service_port and
#       service_url (http://127.0.0.1:PORT). The service logs to FILE, else into lib_tmp.
#       -u VAR removes VAR of the caller's environment; VAR=value comes after the lib's own
#       HOST, PORT, RUST_LOG=warn and MAIL_DIR, so it adds a setting or overrides one of those.
#       Mail goes to .eml files in MAIL_DIR, a folder beside the store (removed with it), and
#       never to an SMTP server that the caller's environment names: SMTP_URL is unset unless
#       passed as VAR=value.
#         embedded:   a SQLite file in a temporary folder;
#         production: a Postgres database and a Redis key prefix of its own. Postgres from
#           PGHOST (127.0.0.1), PGPORT (5432) and PGUSER (postgres), trust auth; Redis from
#           REDIS_URL (redis://127.0.0.1:6379). Needs pg_isready, createdb, dropdb, redis-cli.
#   service_cli ARGS...   runs BINARY ARGS... (e.g. `users set-role`) on the service's store
#   service_stop          stops the service and removes its store (exit does it too)
#   pick_free_port VAR    sets VAR to a free port of 127.0.0.1
#   on_exit FUNCTION      runs FUNCTION on exit, before the service is stopped
#   say MESSAGE           a line on stderr, after NAME; die MESSAGE: the same, then exit 1
#
# On exit, whatever the cause: if the status is not 0 and a service is running (or died),
# the last 50 lines of its log; then the on_exit functions, service_stop and the removal of
# lib_tmp. The exit status is kept. Needs curl.

lib_name=${1:?"usage: source .ci/lib.sh NAME"}
# "newman.sh" names the database newman_<pid>_<random>: a dot would need quoting in SQL.
lib_id=${lib_name%.sh}
lib_tmp=$(mktemp -d "${TMPDIR:-/tmp}/rs256-auth-$lib_id.XXXXXX")

pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}
pg_user=${PGUSER:-postgres}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
# The service accepts a bare host:port; redis-cli -u wants a URL.
case $redis_url in
    *://*) redis_cli_url=$redis_url ;;
    *) redis_cli_url=redis://$redis_url ;;
esac

service_pid='' service_port='' service_url='' service_log=''
_service_bin=''
_lib_ports=()     # every port pick_free_port handed out
_lib_exit_hooks=()

say() { echo "$lib_name: $*" >&2; }
die() {
    say "$*"
    exit 1
}

on_exit() { _lib_exit_hooks+=("$1"); }

# --- ports ----------------------------------------------------------------------------

# pick_free_port VAR: a port nothing listens on, and not one handed out before (e2e.sh picks
# the SPA's port first, and the service's must differ although the SPA is not up yet). Drawn
# below 32768, where Linux's ephemeral ports begin, so that no outgoing connection takes the
# port before the service binds it.
pick_free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 12768))
        [[ " ${_lib_ports[*]} " != *" $port "* ]] || continue
        # A refused connection means nothing listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            _lib_ports+=("$port")
            printf -v "$1" %s "$port"
            return 0
        fi
    done
    die "found no free port on 127.0.0.1"
}

# --- the store --------------------------------------------------------------------------

# Whatever store (or mail server) the caller's environment names, the service must not touch it.
_store_unset=(-u DATABASE_URL -u REDIS_URL -u REDIS_CLUSTER_URLS -u REDIS_KEY_PREFIX -u SMTP_URL)
_store_set=()   # the settings that point the service at its own store
_store_about='' _store_dir='' _store_db='' _store_redis_prefix=''

# _store_create MODE: a store nobody else uses; sets _store_set and _store_about.
_store_create() {
    _store_dir=$(mktemp -d "$lib_tmp/store.XXXXXX")
    case $1 in
        embedded)
            _store_set=(DATABASE_URL="sqlite:$_store_dir/rs256-auth.db")
            _store_about="embedded store in $_store_dir"
            ;;
        production) _store_create_production ;;
        *) die "the store is embedded or production, not $1" ;;
    esac
}

_store_create_production() {
    local suffix="$$_$RANDOM"
    pg_isready -q -h "$pg_host" -p "$pg_port" ||
        die "Postgres does not answer on $pg_host:$pg_port; start it (pg_ctlcluster <version> main start)"
    redis-cli -u "$redis_cli_url" ping >/dev/null ||
        die "Redis does not answer on $redis_url; start redis-server"
    createdb -h "$pg_host" -p "$pg_port" -U "$pg_user" "${lib_id}_$suffix"
    _store_db=${lib_id}_$suffix
    _store_redis_prefix="$lib_id-$suffix:"
    _store_set=(DATABASE_URL="postgres://$pg_user@$pg_host:$pg_port/$_store_db" REDIS_URL="$redis_url"
        REDIS_KEY_PREFIX="$_store_redis_prefix")
    _store_about="database $_store_db, Redis prefix $_store_redis_prefix"
}

# Drops what _store_create made; complains about, but survives, a store that refuses.
_store_remove() {
    if [[ -n $_store_db ]]; then
        dropdb -h "$pg_host" -p "$pg_port" -U "$pg_user" --if-exists --force "$_store_db" ||
            say "could not drop database $_store_db"
    fi
    if [[ -n $_store_redis_prefix ]]; then
        redis-cli -u "$redis_cli_url" --scan --pattern "${_store_redis_prefix}*" 2>/dev/null |
            xargs -r -n 500 redis-cli -u "$redis_cli_url" unlink >/dev/null ||
            say "could not delete Redis keys ${_store_redis_prefix}*"
    fi
    [[ -z $_store_dir ]] || rm -rf "$_store_dir"
    _store_set=() _store_about='' _store_dir='' _store_db='' _store_redis_prefix=''
}

# --- the service ------------------------------------------------------------------------

service_start() {
    [[ -z $service_pid ]] || die "service_start: a service is running already (pid $service_pid)"
    service_log=$lib_tmp/service.log
    if [[ $1 == --log ]]; then
        service_log=$2
        shift 2
    fi
    local mode=$1
    _service_bin=$2
    shift 2
    # env(1) takes every -u before the first VAR=value.
    local -a unset=() settings=()
    while (($#)); do
        if [[ $1 == -u ]]; then
            unset+=(-u "$2")
            shift 2
        else
            settings+=("$1")
            shift
        fi
    done

    _store_create "$mode"
    pick_free_port service_port
    service_url=http://127.0.0.1:$service_port
    say "starting $_service_bin on $service_url ($_store_about)"
    # env execs the binary, so $! is the service's own pid (bench/run.sh reads its /proc).
    env "${_store_unset[@]}" "${unset[@]}" "${_store_set[@]}" \
        HOST=127.0.0.1 PORT="$service_port" RUST_LOG=warn MAIL_DIR="$_store_dir/mail" "${settings[@]}" \
        "$_service_bin" >"$service_log" 2>&1 &
    service_pid=$!
    _service_wait_ready
}

# Polls the healthchecker every 0.1 s for up to 30 s; a service that exits fails at once.
# service_pid stays set on failure, so that the exit shows the log.
_service_wait_ready() {
    local status
    for _ in $(seq 300); do
        if ! kill -0 "$service_pid" 2>/dev/null; then
            wait "$service_pid" && status=0 || status=$?
            die "the service exited with status $status before it became ready"
        fi
        curl -fsS -o /dev/null --max-time 2 "$service_url/api/healthchecker" 2>/dev/null && return 0
        sleep 0.1
    done
    die "the service did not answer $service_url/api/healthchecker within 30 s"
}

service_cli() {
    env "${_store_unset[@]}" "${_store_set[@]}" "$_service_bin" "$@"
}

# SIGTERM, on which the service finishes its requests and exits; SIGKILL after 5 s.
service_stop() {
    if [[ -n $service_pid ]]; then
        if kill -0 "$service_pid" 2>/dev/null; then
            kill "$service_pid" 2>/dev/null || true
            for _ in $(seq 50); do
                kill -0 "$service_pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$service_pid" 2>/dev/null || true
        fi
        wait "$service_pid" 2>/dev/null || true
        service_pid=''
    fi
    _store_remove
}

_service_show_log() {
    echo "----- service log (last 50 lines of $service_log) -----" >&2
    tail -n 50 "$service_log" >&2 || true
    echo "----- end of service log -----" >&2
}

# --- exit -------------------------------------------------------------------------------

# Run by the EXIT trap (shellcheck 0.9 takes the body for unreachable: SC2317).
# shellcheck disable=SC2317
_lib_on_exit() {
    local rc=$? hook
    set +e
    if [[ $rc -ne 0 && -n $service_pid ]]; then
        _service_show_log
    fi
    for hook in "${_lib_exit_hooks[@]}"; do
        "$hook"
    done
    service_stop
    rm -rf "$lib_tmp"
    exit "$rc"
}
trap _lib_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
