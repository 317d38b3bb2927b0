#!/usr/bin/env bash
# Install everything (Python packages, and as root the Debian packages for SLURM and MPI),
# then run every check: lint, types, docs, and the whole test suite against real
# Dask, Parsl, RADICAL-Pilot and a single-node SLURM that the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "Debian packages: SLURM (single node, started by the tests), Open MPI, graphviz, Chromium (the HTML report)"
    bash tests/infra/slurm.sh install
    if ! command -v mpirun >/dev/null || ! command -v dot >/dev/null || ! command -v chromium >/dev/null; then
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            openmpi-bin graphviz chromium >/dev/null
    fi
else
    log "not root: skipping Debian packages (SLURM tests need tests/infra/slurm.sh install)"
fi

log "Python environment (.venv, uv)"
python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
UV="python3 -m uv"
[ -x .venv/bin/python ] || $UV venv -q -p python3 .venv
$UV pip install -q -p .venv/bin/python -c constraints.txt \
    -e ".[dev,all]"

log "lint (ruff) and types (mypy)"
.venv/bin/ruff check src adapters tests benchmarks
.venv/bin/mypy

log "tests"
exec .venv/bin/python -m pytest tests "$@"
