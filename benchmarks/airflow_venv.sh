#!/bin/sh
# Creates the separate venv benchmarks/engine.py uses for its Airflow comparison:
# apache-airflow 2.10 with the PostgreSQL provider (LocalExecutor needs a database server).
# Airflow's constraint files are not used (they are served from GitHub, not PyPI): the version
# range is pinned instead and pip resolves the rest from PyPI.
# Usage: sh benchmarks/airflow_venv.sh [VENV]   (default: $TMPDIR/kaapana-bench-airflow)
set -eu
VENV="${1:-${TMPDIR:-/tmp}/kaapana-bench-airflow}"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "apache-airflow[postgres]>=2.10.4,<2.11"
"$VENV/bin/airflow" version
