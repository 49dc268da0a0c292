#!/usr/bin/env bash
# The Python module's tests: builds the extension once into a throwaway venv, runs ferrossl's
# own pytest suite, then pyOpenSSL's test suite (downloaded at run time) as a conformance check.
set -euo pipefail
cd "$(dirname "$0")"
venv="${FERROSSL_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# maturin develop installs into the active virtualenv: this one, wherever FERROSSL_VENV puts it.
export VIRTUAL_ENV="$(cd "$venv" && pwd)"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "maturin>=1.5,<2" pytest pytest-timeout pytest-rerunfailures pretend \
    "cryptography>=49,<51" "pyOpenSSL==26.4.0" "mypy>=1.10,<2"
"$venv/bin/maturin" develop --quiet
"$venv/bin/python" -m pytest tests -q -p no:cacheprovider
# The shipped type stubs must match the module they describe.
"$venv/bin/python" -m mypy.stubtest ferrossl.dtls
"$venv/bin/python" conformance/run_pyopenssl_tests.py
