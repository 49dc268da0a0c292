#!/usr/bin/env bash
# The Python module's tests: builds the extension once into a throwaway venv, runs ferrossl's
# own pytest suite, then pyOpenSSL's test suite and Twisted's TLS tests (both downloaded at run
# time) as conformance checks.
set -euo pipefail
cd "$(dirname "$0")"
venv="${FERROSSL_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# maturin develop installs into the active virtualenv: this one, wherever FERROSSL_VENV puts it.
export VIRTUAL_ENV="$(cd "$venv" && pwd)"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "maturin>=1.5,<2" pytest pytest-timeout pytest-rerunfailures pretend mypy \
    "cryptography>=49,<51" "pyOpenSSL==26.4.0"
# Release: the stress test runs 10,000 handshakes and the misuse tests move 100 MB.
"$venv/bin/maturin" develop --release --quiet
# The wheel ships the type information (reuses the release build above).
wheels=$(mktemp -d)
"$venv/bin/maturin" build --release --quiet -o "$wheels"
"$venv/bin/python" -c '
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = {"ferrossl/_native.pyi", "ferrossl/dtls.pyi", "ferrossl/py.typed"} - names
sys.exit(f"the wheel lacks {sorted(missing)}" if missing else 0)
' "$wheels"/*.whl
rm -rf "$wheels"
"$venv/bin/python" -m pytest tests -q -p no:cacheprovider
# The shipped type stubs must match the module they describe.
"$venv/bin/python" -m mypy.stubtest ferrossl.dtls
"$venv/bin/python" conformance/run_pyopenssl_tests.py
# A real program's suite: Twisted's TLS tests (downloaded at run time) on ferrossl as OpenSSL.
"$venv/bin/python" conformance/run_twisted_tests.py
