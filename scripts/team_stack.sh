#!/usr/bin/env bash
# Tracelet's team stack without Docker: PostgreSQL as MLflow's backend store and `mlflow server`
# with a local artifact destination, both on 127.0.0.1. The same topology as compose/, for
# developers and for the tests in tests/team/. Every command is idempotent.
#
#   scripts/team_stack.sh start            install PostgreSQL if missing (apt-get), start both, print the URI
#   scripts/team_stack.sh stop             stop both; the data stays for the next start
#   scripts/team_stack.sh restart [postgres|mlflow]   restart one piece (default: both)
#   scripts/team_stack.sh status           say what runs; exit 0 only when both answer
#   scripts/team_stack.sh env              print `export` lines: eval "$(scripts/team_stack.sh env)"
#   scripts/team_stack.sh purge            stop both and delete the state directory
#
# Environment (all optional):
#   TEAM_STACK_DIR          state directory (default ./.team-stack): ports, password, logs, artifacts
#   TEAM_STACK_PG_PORT      PostgreSQL port      } default: a free port, chosen at the first start
#   TEAM_STACK_MLFLOW_PORT  mlflow server port   } and kept for later starts
#   TEAM_STACK_MLFLOW       the mlflow executable (default: .venv/bin/mlflow of this repo, else PATH)
#   TEAM_STACK_WORKERS      mlflow server workers (default 1)
#   TEAM_STACK_PG_BIN       PostgreSQL's bin directory, for an installation outside Debian's layout
#                           (default: the newest /usr/lib/postgresql/<ver>/bin, installed if missing)
#
# Exit codes: 0 ok, 1 a piece failed to start or stop (its log is named), 2 usage,
# 3 PostgreSQL is missing and could not be installed, 4 the Python driver for PostgreSQL is missing.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=$(mkdir -p "${TEAM_STACK_DIR:-./.team-stack}" && cd "${TEAM_STACK_DIR:-./.team-stack}" && pwd)
STACK_ENV="$STATE/stack.env"
DB_NAME=mlflow
DB_USER=tracelet

say() { echo "team-stack: $*" >&2; }
die() {
    local code=$1
    shift
    say "error: $*"
    exit "$code"
}

# -- tools -------------------------------------------------------------------------------------

resolve_tools() {
    # The mlflow executable, and the interpreter of that installation (it must load the PostgreSQL driver).
    if [ -n "${TEAM_STACK_MLFLOW:-}" ]; then
        MLFLOW_BIN=$TEAM_STACK_MLFLOW
    elif [ -x "$REPO/.venv/bin/mlflow" ]; then
        MLFLOW_BIN=$REPO/.venv/bin/mlflow
    else
        MLFLOW_BIN=$(command -v mlflow) ||
            die 1 "no mlflow executable: pip install 'tracelet-lightning[team]' or set TEAM_STACK_MLFLOW"
    fi
    PY=$(dirname "$MLFLOW_BIN")/python
    [ -x "$PY" ] || PY=$(command -v python3)
}

pg_bin_dir() {
    # TEAM_STACK_PG_BIN if set; else Debian's layout, /usr/lib/postgresql/<ver>/bin, newest version.
    local dir=${TEAM_STACK_PG_BIN:-}
    if [ -z "$dir" ]; then
        dir=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    fi
    if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; fi
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

as_postgres() {
    # PostgreSQL refuses to run as root; as root, run it as the `postgres` user of Debian's package.
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ensure_postgres() {
    if [ -n "$(pg_bin_dir)" ]; then
        return
    fi
    [ -z "${TEAM_STACK_PG_BIN:-}" ] || die 3 "TEAM_STACK_PG_BIN=$TEAM_STACK_PG_BIN holds no pg_ctl"
    say "PostgreSQL is not installed; installing Debian's postgresql package (log: $STATE/apt.log)"
    command -v apt-get >/dev/null || die 3 "PostgreSQL is missing and there is no apt-get; install PostgreSQL (server binaries under /usr/lib/postgresql/<ver>/bin)"
    # Lock::Timeout: wait for another apt/dpkg run to finish rather than fail at once.
    local started=$SECONDS apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    local install=("${apt[@]}" install -y -q --no-install-recommends postgresql)
    # Try without refreshing the package lists first: quick when they are recent.
    if ! as_root "${install[@]}" >"$STATE/apt.log" 2>&1; then
        if ! { as_root "${apt[@]}" update -q && as_root "${install[@]}"; } >>"$STATE/apt.log" 2>&1; then
            die 3 "apt-get could not install postgresql (running as $(id -un)); see $STATE/apt.log"
        fi
    fi
    [ -n "$(pg_bin_dir)" ] || die 3 "the postgresql package installed no server binaries; see $STATE/apt.log"
    say "PostgreSQL installed in $((SECONDS - started)) s"
}

ensure_driver() {
    "$PY" - <<'EOF' 2>/dev/null || die 4 "$PY cannot load SQLAlchemy's driver for postgresql:// URIs; install it: $PY -m pip install 'psycopg[binary]' (or: pip install 'tracelet-lightning[team]')"
from sqlalchemy.engine import make_url
make_url("postgresql://").get_dialect().import_dbapi()
EOF
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# -- state -------------------------------------------------------------------------------------

load_state() {
    if [ -f "$STACK_ENV" ]; then
        # shellcheck disable=SC1090
        . "$STACK_ENV"
    fi
}

init_state() {
    load_state
    if [ -n "${PG_PORT:-}" ]; then
        return
    fi
    # Everything in the state directory is local and throwaway: keep it out of git.
    echo "*" >"$STATE/.gitignore"
    PG_PORT=${TEAM_STACK_PG_PORT:-$(free_port)}
    MLFLOW_PORT=${TEAM_STACK_MLFLOW_PORT:-$(free_port)}
    while [ "$MLFLOW_PORT" = "$PG_PORT" ]; do MLFLOW_PORT=$(free_port); done
    PG_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_hex(16))')
    PG_DIR=$(postgres_dir)
    umask 077
    cat >"$STACK_ENV" <<EOF
PG_PORT=$PG_PORT
MLFLOW_PORT=$MLFLOW_PORT
PG_PASSWORD=$PG_PASSWORD
PG_DIR=$PG_DIR
EOF
    umask 022
}

postgres_dir() {
    # The data directory lives in the state directory when the postgres user can reach it there.
    # Under a directory closed to other users (/root, pytest's 0700 temp dirs), or on a path too long
    # for a Unix socket name (107 bytes) or with a space (pg_ctl -o splits on them), it goes to a
    # throwaway directory under /tmp instead.
    local dir="$STATE/postgres"
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
        chmod 700 "$dir"
        if ! runuser -u postgres -- test -w "$dir" || [ ${#dir} -gt 80 ] || [[ $dir == *" "* ]]; then
            rmdir "$dir"
            dir=$(mktemp -d /tmp/tracelet-pg.XXXXXX)
            chown postgres: "$dir"
        fi
    elif [ ${#dir} -gt 80 ] || [[ $dir == *" "* ]]; then
        rmdir "$dir"
        dir=$(mktemp -d /tmp/tracelet-pg.XXXXXX)
    fi
    echo "$dir"
}

backend_store_uri() {
    # SQLAlchemy 2.1 maps postgresql:// to psycopg 3.
    echo "postgresql://$DB_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"
}

tracking_uri() { echo "http://127.0.0.1:$MLFLOW_PORT"; }

# -- PostgreSQL --------------------------------------------------------------------------------

# 9>&-: the server must not inherit the lock of this script (see with_lock).
pg_ctl_() { as_postgres "$(pg_bin_dir)/pg_ctl" -D "$PG_DIR/data" "$@" 9>&-; }

pg_running() { [ -f "$PG_DIR/data/PG_VERSION" ] && pg_ctl_ status >/dev/null 2>&1; }

pg_options() { echo "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR"; }

start_postgres() {
    local bin
    bin=$(pg_bin_dir)
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
        say "initialising a PostgreSQL cluster in $PG_DIR/data"
        printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/pwfile"
        [ "$(id -u)" -ne 0 ] || chown postgres: "$PG_DIR/pwfile"
        # Local socket: trust (only the postgres user can open the 0700 directory); TCP: password.
        as_postgres "$bin/initdb" -D "$PG_DIR/data" -U "$DB_USER" --pwfile="$PG_DIR/pwfile" -E UTF8 \
            --auth-local=trust --auth-host=scram-sha-256 >"$STATE/initdb.log" 2>&1 ||
            die 1 "initdb failed; see $STATE/initdb.log"
        rm -f "$PG_DIR/pwfile"
    fi
    if pg_running; then
        say "PostgreSQL already runs on 127.0.0.1:$PG_PORT"
    else
        port_in_use "$PG_PORT" && die 1 "port $PG_PORT (PostgreSQL) is taken by another program; purge or set TEAM_STACK_PG_PORT"
        pg_ctl_ -l "$PG_DIR/postgres.log" -w -t 60 -o "$(pg_options)" start >/dev/null ||
            die 1 "PostgreSQL did not start; see $PG_DIR/postgres.log"
        say "PostgreSQL runs on 127.0.0.1:$PG_PORT (data: $PG_DIR/data)"
    fi
    local psql=(as_postgres "$bin/psql" -h "$PG_DIR" -p "$PG_PORT" -U "$DB_USER" -d postgres -tAq)
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]; then
        "${psql[@]}" -c "CREATE DATABASE $DB_NAME" || die 1 "could not create the database $DB_NAME"
    fi
}

stop_postgres() {
    if pg_running; then
        pg_ctl_ -m fast -w stop >/dev/null || die 1 "PostgreSQL did not stop; see $PG_DIR/postgres.log"
        say "PostgreSQL stopped"
    fi
}

restart_postgres() {
    if pg_running; then
        pg_ctl_ -m fast -w -t 60 -l "$PG_DIR/postgres.log" -o "$(pg_options)" restart >/dev/null ||
            die 1 "PostgreSQL did not restart; see $PG_DIR/postgres.log"
        say "PostgreSQL restarted"
    else
        start_postgres
    fi
}

# -- mlflow server -----------------------------------------------------------------------------

mlflow_pid() {
    # The pid of our server: recorded at start, and still an `mlflow server` process.
    local pid
    pid=$(cat "$STATE/mlflow.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && grep -q "mlflow" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

mlflow_healthy() {
    "$PY" - "$(tracking_uri)/health" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
    sys.exit(0 if response.status == 200 else 1)
EOF
}

wait_for_mlflow() {
    local pid=$1 deadline=$((SECONDS + 120))
    until mlflow_healthy; do
        kill -0 "$pid" 2>/dev/null || die 1 "mlflow server exited; see $STATE/mlflow.log"
        [ $SECONDS -lt $deadline ] || die 1 "mlflow server did not answer within 120 s; see $STATE/mlflow.log"
        sleep 0.3
    done
}

start_mlflow() {
    local pid
    if pid=$(mlflow_pid); then
        wait_for_mlflow "$pid"
        say "mlflow server already runs at $(tracking_uri)"
        return
    fi
    stop_mlflow_group # children of a server killed alone may still hold the port
    port_in_use "$MLFLOW_PORT" && die 1 "port $MLFLOW_PORT (mlflow server) is taken by another program; purge or set TEAM_STACK_MLFLOW_PORT"
    mkdir -p "$STATE/artifacts"
    # Its own session (setsid), so that `stop` can end the server and all its workers as one group.
    # Job execution off: its job-runner processes slow every request (TRACKERS.md).
    env -u MLFLOW_TRACKING_URI MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true \
        setsid "$MLFLOW_BIN" server --host 127.0.0.1 --port "$MLFLOW_PORT" \
        --backend-store-uri "$(backend_store_uri)" \
        --default-artifact-root mlflow-artifacts:/ --artifacts-destination "$STATE/artifacts" \
        --workers "${TEAM_STACK_WORKERS:-1}" >>"$STATE/mlflow.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$STATE/mlflow.pid"
    local started=$SECONDS
    wait_for_mlflow "$pid"
    say "mlflow server runs at $(tracking_uri) (ready in $((SECONDS - started)) s; log: $STATE/mlflow.log)"
}

group_alive() {
    # A live (not zombie) process in process group $1. Zombies linger until PID 1 reaps them, which
    # can take seconds in containers: they hold no port and no file, so they do not count.
    ps -e -o pgid=,stat= | awk -v group="$1" '$1 == group && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

stop_mlflow_group() {
    # $1: TERM (graceful, default) or KILL.
    local pid deadline
    pid=$(cat "$STATE/mlflow.pid" 2>/dev/null) || return 0
    [ -n "$pid" ] || return 0
    kill "-${1:-TERM}" -- "-$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while group_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    while group_alive "$pid"; do sleep 0.1; done
    rm -f "$STATE/mlflow.pid"
}

stop_mlflow() {
    if [ -f "$STATE/mlflow.pid" ]; then
        stop_mlflow_group
        say "mlflow server stopped"
    fi
}

# -- commands ----------------------------------------------------------------------------------

print_env() {
    printf 'export MLFLOW_TRACKING_URI=%q\n' "$(tracking_uri)"
    printf 'export TEAM_STACK_BACKEND_STORE_URI=%q\n' "$(backend_store_uri)"
    printf 'export TEAM_STACK_ARTIFACTS_DESTINATION=%q\n' "$STATE/artifacts"
    printf 'export TEAM_STACK_PG_PORT=%q\n' "$PG_PORT"
    printf 'export TEAM_STACK_PGDATA=%q\n' "$PG_DIR/data"
    printf 'export TEAM_STACK_MLFLOW_PID=%q\n' "$(cat "$STATE/mlflow.pid" 2>/dev/null || true)"
}

with_lock() {
    # One command at a time per state directory: two concurrent `start`s must not race.
    exec 9>"$STATE/.lock"
    flock -w 300 9 || die 1 "another team_stack.sh command holds $STATE/.lock"
}

command=${1:-}
case "$command" in
    start)
        with_lock
        resolve_tools
        ensure_driver
        ensure_postgres
        init_state
        start_postgres
        start_mlflow
        say "MLflow UI: $(tracking_uri)   (Tracelet: export MLFLOW_TRACKING_URI=$(tracking_uri))"
        print_env
        ;;
    stop)
        with_lock
        load_state
        [ -n "${PG_PORT:-}" ] || exit 0
        stop_mlflow
        stop_postgres
        ;;
    restart)
        with_lock
        resolve_tools
        ensure_driver
        ensure_postgres
        init_state
        case "${2:-all}" in
            postgres) restart_postgres ;;
            mlflow) stop_mlflow && start_mlflow ;;
            all) stop_mlflow && restart_postgres && start_mlflow ;;
            *) die 2 "restart takes postgres, mlflow or nothing (both); got '$2'" ;;
        esac
        ;;
    status)
        resolve_tools
        load_state
        [ -n "${PG_PORT:-}" ] || {
            say "not started (state: $STATE)"
            exit 1
        }
        up=0
        if pg_running; then say "PostgreSQL: running on 127.0.0.1:$PG_PORT"; else say "PostgreSQL: stopped" && up=1; fi
        if mlflow_pid >/dev/null && mlflow_healthy; then
            say "mlflow server: running at $(tracking_uri)"
        else
            say "mlflow server: stopped" && up=1
        fi
        exit $up
        ;;
    env)
        load_state
        [ -n "${PG_PORT:-}" ] || die 1 "not started: run scripts/team_stack.sh start"
        print_env
        ;;
    purge)
        with_lock
        load_state
        if [ -n "${PG_PORT:-}" ]; then
            # The data goes away: no need for graceful shutdowns.
            stop_mlflow_group KILL
            ! pg_running || pg_ctl_ -m immediate -w stop >/dev/null
            case "$PG_DIR" in /tmp/tracelet-pg.*) rm -rf "$PG_DIR" ;; esac
        fi
        rm -rf "$STATE"
        say "purged $STATE"
        ;;
    *)
        echo "usage: scripts/team_stack.sh start|stop|restart [postgres|mlflow]|status|env|purge" >&2
        exit 2
        ;;
esac
