#!/usr/bin/env bash
# Builds wolfSSL's example client and server, a DTLS 1.2/1.3 test peer with connection IDs,
# into target/peers/wolfssl/ and prints that directory. wolfSSL is GPL: it is a test peer
# only, never linked into anything shipped. Its source comes from the wolfssl-sys crate on
# crates.io (fetched by cargo into a scratch project, so no other registry is needed).
# Needs autoconf, automake and libtool (apt). Idempotent: a finished build is reused.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version=5.3.0 # wolfssl-sys 5.3.0 carries wolfSSL 5.9.4
out="$root/target/peers/wolfssl"
# DTLS 1.2 and 1.3, connection IDs (RFC 9146, RFC 9147 §9), a fragmented first ClientHello,
# X25519 and the ML-KEM hybrids, tickets, DTLS-SRTP and its keying material (the examples
# export it only with the OpenSSL compatibility layer on); the examples linked statically.
features="--enable-dtls --enable-dtls13 --enable-dtlscid --enable-dtls-frag-ch --enable-curve25519
    --enable-mlkem --enable-session-ticket --enable-srtp --enable-keying-material --enable-opensslextra --enable-static
    --disable-shared"
if [ -x "$out/client" ] && [ -x "$out/server" ] && [ -f "$out/certs/dh2048.pem" ] &&
    [ "$(cat "$out/features" 2>/dev/null)" = "$features" ]; then
    echo "$out"
    exit 0
fi
work="$root/target/peers/wolfssl-build"
rm -rf "$work"
mkdir -p "$work/fetch/src" "$out"
cat >"$work/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-wolfssl-source"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
wolfssl-sys = "=$version"
[workspace]
TOML
echo "fn main() {}" >"$work/fetch/src/main.rs"
(cd "$work/fetch" && cargo fetch --quiet) >&2
crate=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name "wolfssl-sys-$version.crate" | head -n 1)
[ -n "$crate" ] || { echo "wolfssl-sys-$version.crate not found after cargo fetch" >&2; exit 1; }
tar -xzf "$crate" -C "$work"
src="$work/wolfssl-sys-$version/wolfssl-src"
(
    cd "$src"
    ./autogen.sh
    # shellcheck disable=SC2086 # one word per option
    ./configure --quiet $features
    make --quiet -j"$(nproc)" examples/client/client examples/server/server
) >&2
cp "$src/examples/client/client" "$src/examples/server/server" "$out/"
# The examples look for certs/dh2048.pem from their working directory up ("wolf root"), a
# file the crate leaves out: run them in $out, with absolute paths for the certificates they
# are given, beside RFC 7919's ffdhe2048 group in that file.
mkdir -p "$out/certs"
openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out "$out/certs/dh2048.pem"
echo "$features" >"$out/features"
rm -rf "$work"
echo "$out"
