#!/usr/bin/env bash
# Tracelet's developer entry point. Idempotent: a second run with nothing changed takes seconds.
#
#   ./dev.sh demo         set up .venv and train the digits example, tracked to MLflow's local store
#   ./dev.sh test         set up .venv (and Chromium for the browser tests) and run the checks:
#                         ruff, mypy, the test suite
#   ./dev.sh docs         build the documentation into docs/_build/html (warnings are errors)
#   ./dev.sh screenshots  retake docs/images/mlflow.png and aim.png in a real browser
#   ./dev.sh setup        only set up .venv
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"
STAMP="$VENV/.tracelet-setup"

setup() {
    if [ ! -x "$PY" ]; then
        echo "== creating $VENV"
        python3 -m venv "$VENV"
    fi
    # Reinstall only when the dependency declaration changed since the last setup.
    local want
    want=$(cat pyproject.toml dev.sh | sha256sum | cut -d' ' -f1)
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        return
    fi
    echo "== installing tracelet-lightning[dev] into $VENV (a few minutes the first time)"
    "$PY" -m pip install -q --upgrade pip
    # torch is pinned for the dev install only (the CPU wheel on this machine); the package itself
    # accepts a range. setuptools<82 keeps pkg_resources, which Aim still imports.
    "$PY" -m pip install -q -e ".[dev]" "torch==2.13.0" "setuptools<82"
    echo "$want" > "$STAMP"
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

ensure_browser() {
    # The browser tests (tests/ui) and docs/_scripts/screenshots.py drive Debian's Chromium through its
    # chromedriver; Selenium comes with the dev extra. Quick when both are there.
    if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
        return
    fi
    local log="${TMPDIR:-/tmp}/tracelet-apt-chromium.log" started=$SECONDS
    if ! command -v apt-get >/dev/null; then
        echo "== no chromium/chromedriver and no apt-get to install them: the browser tests (tests/ui) are skipped" >&2
        return
    fi
    echo "== installing Debian's chromium and chromium-driver for the browser tests (log: $log)"
    # Lock::Timeout: wait for another apt/dpkg run to finish rather than fail at once.
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    local install=("${apt[@]}" install -y -q --no-install-recommends chromium chromium-driver fonts-liberation)
    # Try without refreshing the package lists first: quick when they are recent.
    if as_root "${install[@]}" >"$log" 2>&1 || { as_root "${apt[@]}" update -q && as_root "${install[@]}"; } >>"$log" 2>&1; then
        echo "== chromium installed in $((SECONDS - started)) s"
    else
        echo "== could not install chromium as $(id -un) (needs root or passwordless sudo; see $log):" \
            "the browser tests (tests/ui) are skipped" >&2
    fi
}

quiet_env() {
    # No telemetry, no network, no prompts: every tracker in a local or offline mode.
    export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
    export WANDB_MODE="${WANDB_MODE:-offline}" WANDB_SILENT=true
}

case "${1:-}" in
    setup)
        setup
        ;;
    demo)
        setup
        quiet_env
        shift
        exec "$PY" examples/train_digits.py "$@"
        ;;
    test)
        setup
        ensure_browser
        quiet_env
        shift
        echo "== ruff"
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        echo "== mypy"
        "$VENV/bin/mypy"
        echo "== pytest"
        exec "$PY" -m pytest "$@"
        ;;
    docs)
        setup
        quiet_env
        shift
        exec "$PY" -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
        ;;
    screenshots)
        setup
        ensure_browser
        quiet_env
        shift
        exec "$PY" docs/_scripts/screenshots.py "$@"
        ;;
    *)
        echo "usage: ./dev.sh demo|test|docs|screenshots|setup [args]" >&2
        exit 2
        ;;
esac
