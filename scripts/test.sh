#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine that has only Rust, gcc, Python and pip:
# installs the peers the interop tests start (OpenSSL, GnuTLS, curl) and libssl-dev for the
# benchmarks' OpenSSL column, and the audit tools (testssl.sh, sslscan, nmap; sslyze from
# PyPI), builds once, then runs every test, clippy, rustfmt, the Python module's tests and
# the fuzzers briefly.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
command -v openssl >/dev/null || apt_packages+=(openssl)
command -v gnutls-serv >/dev/null || apt_packages+=(gnutls-bin)
command -v curl >/dev/null || apt_packages+=(curl)
command -v unshare >/dev/null || apt_packages+=(util-linux)
command -v ip >/dev/null || apt_packages+=(iproute2)
# The benchmarks compare against the system OpenSSL through the openssl crate.
command -v pkg-config >/dev/null || apt_packages+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || apt_packages+=(libssl-dev)
# The audit tools of crates/ferrossl-cli/tests/audit.rs (Debian names its testssl.sh "testssl").
command -v testssl >/dev/null || apt_packages+=(testssl.sh)
command -v sslscan >/dev/null || apt_packages+=(sslscan)
command -v nmap >/dev/null || apt_packages+=(nmap)
# wolfSSL, the DTLS 1.3 peer, is built from source by tests/peers/wolfssl.sh.
command -v autoreconf >/dev/null || apt_packages+=(autoconf)
command -v automake >/dev/null || apt_packages+=(automake)
command -v libtoolize >/dev/null || apt_packages+=(libtool)
# The benchmark's wolfSSL column: wolfssl-sys generates its bindings with bindgen (libclang).
dpkg -s libclang-dev >/dev/null 2>&1 || apt_packages+=(libclang-dev)
# crates/ferrossl-gio: GLib's headers to build the module and the C test programs, PyGObject
# with the GIR data of GIO and libsoup 3 for the Python tests, and glib-networking, the other
# backend the module must not displace unless GIO_USE_TLS asks for it.
dpkg -s libglib2.0-dev >/dev/null 2>&1 || apt_packages+=(libglib2.0-dev)
command -v gcc >/dev/null || apt_packages+=(gcc)
dpkg -s python3-gi >/dev/null 2>&1 || apt_packages+=(python3-gi)
dpkg -s gir1.2-soup-3.0 >/dev/null 2>&1 || apt_packages+=(gir1.2-soup-3.0)
dpkg -s glib-networking >/dev/null 2>&1 || apt_packages+=(glib-networking)
if ((${#apt_packages[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing test peers: ${apt_packages[*]}"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

# Under CI a missing peer is a failure, not a skip.
export CI="${CI:-}"

# sslyze, the one audit tool from PyPI, in a venv of its own that the audit test finds.
audit_venv=target/audit-venv
[ -x "$audit_venv/bin/sslyze" ] || { python3 -m venv "$audit_venv" && "$audit_venv/bin/pip" install --quiet sslyze==6.3.1; }
export FERROSSL_SSLYZE="$PWD/$audit_venv/bin/sslyze"

log=$(mktemp)
trap 'rm -f "$log" "$log.py"' EXIT
# One build for everything: the optional tokio feature (async DTLS calls) is on, so its tests
# run and nothing is compiled twice.
features=(--features ferrossl/tokio)
cargo build --workspace --all-targets --locked "${features[@]}"
cargo test --workspace --locked --no-fail-fast "${features[@]}" 2>&1 | tee "$log"
cargo clippy --workspace --all-targets --locked "${features[@]}" -- -D warnings
cargo fmt --all --check
# The Python module: its own tests, then pyOpenSSL's suite and Twisted's TLS tests as
# conformance checks.
bash python/run-tests.sh 2>&1 | tee "$log.py"
# Every fuzz target for a bounded time: no crash, no panic (the Python argument fuzzer uses
# the module that venv now holds).
bash fuzz/run.sh 15
# The benchmarks' Python rows, briefly (no timing is asserted), with the module that venv now
# holds; pyrtls is the one library they compare with that it lacks (without it, its column
# says so).
venv="${FERROSSL_VENV:-.venv}"
[[ $venv = /* ]] || venv="python/$venv"
"$venv/bin/pip" install --quiet pyrtls || echo "pyrtls could not be installed"
cargo run --locked --quiet "${features[@]}" -p ferrossl-bench -- --quick --python "$venv/bin/python"

# One closing line that sums every test binary's result (cargo's and pytest's; the
# conformance run reports its own figure above, with its expected failures).
grep -E "^[0-9]+ passed" "$log.py" | head -n 1 | sed -E 's/^([0-9]+) passed.*/test result: ok. \1 passed; 0 failed; 0 ignored/' >> "$log"
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "ferrossl: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
