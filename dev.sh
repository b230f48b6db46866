#!/usr/bin/env bash
# Tracelet's developer entry point. Idempotent: a second run with nothing changed takes seconds.
#
#   ./dev.sh demo   set up .venv and train the digits example, tracked to MLflow's local store
#   ./dev.sh test   set up .venv and run the checks: ruff, mypy, the test suite
#   ./dev.sh setup  only set up .venv
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
    *)
        echo "usage: ./dev.sh demo|test|setup [args]" >&2
        exit 2
        ;;
esac
