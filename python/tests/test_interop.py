"""Interop with other TLS implementations: the stdlib ``ssl`` module over memory BIOs (both
roles), and ``openssl s_server``/``s_client`` processes on 127.0.0.1 with a ferrossl end in
socket mode and in memory-BIO mode pumped over a socket. Processes are always killed and
every wait is bounded."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from ferrossl import SSL
from tlshelp import client_context, server_context

pytestmark = pytest.mark.timeout(60)


def need_openssl() -> None:
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is not installed")
        pytest.skip("openssl is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(proc: subprocess.Popen, marker: bytes, timeout: float = 10) -> None:
    """Reads the process's stdout until a line contains ``marker``, for at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            if marker in line:
                return
    raise AssertionError(f"{proc.args[:2]} did not print {marker!r}")


@contextlib.contextmanager
def openssl_server(pki, *extra: str):
    need_openssl()
    port = free_port()
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(pki.cert_path), "-key", str(pki.key_path),
         "-rev", "-naccept", "1", *extra],
        # Unbuffered: select() then sees every line that was not read yet.
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
    )
    try:
        wait_for_line(proc, b"ACCEPT")
        yield port
    finally:
        proc.kill()
        proc.wait(10)


def drive_memory_bio(conn: SSL.Connection, sock: socket.socket, until) -> None:
    """Moves ciphertext between a memory-BIO connection and a socket until ``until()``."""
    deadline = time.monotonic() + 10
    while not until():
        assert time.monotonic() < deadline, "no progress"
        try:
            sock.sendall(conn.bio_read(65536))
        except SSL.WantReadError:
            pass
        ready, _, _ = select.select([sock], [], [], 0.05)
        if ready:
            data = sock.recv(65536)
            if not data:
                conn.bio_shutdown()
            else:
                conn.bio_write(data)


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_socket_client_against_openssl_s_server(pki, version):
    with openssl_server(pki, version) as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn = SSL.Connection(client_context(pki), sock)
        conn.set_connect_state()
        conn.set_tlsext_host_name(b"localhost")
        conn.do_handshake()
        assert conn.get_protocol_version_name() == {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[version]
        conn.sendall(b"ferrossl\n")
        assert conn.recv(100) == b"lssorref\n"
        conn.shutdown()
        sock.close()


def test_memory_bio_client_against_openssl_s_server(pki):
    with openssl_server(pki) as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn = SSL.Connection(client_context(pki), None)
        conn.set_connect_state()

        def handshaken() -> bool:
            try:
                conn.do_handshake()
                return True
            except SSL.WantReadError:
                return False

        drive_memory_bio(conn, sock, handshaken)
        conn.sendall(b"memory bio\n")
        got = []

        def answered() -> bool:
            try:
                got.append(conn.recv(100))
            except SSL.WantReadError:
                pass
            return b"".join(got).endswith(b"\n")

        drive_memory_bio(conn, sock, answered)
        assert b"".join(got) == b"oib yromem\n"
        sock.close()


def test_openssl_s_client_against_memory_bio_server(pki):
    need_openssl()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki.ca_path), "-verify_return_error",
         "-servername", "localhost", "-quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
    )
    try:
        proc.stdin.write(b"from s_client\n")
        listener.settimeout(10)
        raw, _ = listener.accept()
        conn = SSL.Connection(server_context(pki), None)
        conn.set_accept_state()
        got = []

        def received() -> bool:
            try:
                got.append(conn.recv(100))
            except SSL.WantReadError:
                pass
            return b"".join(got).endswith(b"\n")

        drive_memory_bio(conn, raw, received)
        assert b"".join(got) == b"from s_client\n"
        assert conn.get_servername() == b"localhost"
        conn.sendall(b"from ferrossl\n")
        raw.sendall(conn.bio_read(65536))
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready and proc.stdout.readline() == b"from ferrossl\n"
        raw.close()
    finally:
        proc.kill()
        proc.wait(10)
        listener.close()


def stdlib_pair(ctx: ssl.SSLContext, server_side: bool):
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=server_side, server_hostname=None if server_side else "localhost")
    return obj, incoming, outgoing


def pump_with_stdlib(conn: SSL.Connection, obj: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, done) -> None:
    for _ in range(20):
        for step in (conn.do_handshake, obj.do_handshake):
            with contextlib.suppress(SSL.WantReadError, ssl.SSLWantReadError):
                step()
        with contextlib.suppress(SSL.WantReadError):
            incoming.write(conn.bio_read(65536))
        if outgoing.pending:
            conn.bio_write(outgoing.read())
        if done():
            return
    raise AssertionError("the handshake did not finish")


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_stdlib_client_and_ferrossl_server_in_memory(pki, tls_version):
    cctx = ssl.create_default_context(cafile=str(pki.ca_path))
    cctx.maximum_version = tls_version
    cctx.set_alpn_protocols(["h2"])
    obj, incoming, outgoing = stdlib_pair(cctx, server_side=False)
    sctx = server_context(pki)
    sctx.set_alpn_select_callback(lambda conn, offered: offered[0])
    conn = SSL.Connection(sctx, None)
    conn.set_accept_state()
    pump_with_stdlib(conn, obj, incoming, outgoing, lambda: obj.version() is not None and conn.get_state_string() == b"SSL negotiation finished successfully")
    assert obj.version() == conn.get_protocol_version_name()
    assert obj.selected_alpn_protocol() == "h2" and conn.get_alpn_proto_negotiated() == b"h2"
    obj.write(b"stdlib says hi")
    conn.bio_write(outgoing.read())
    assert conn.recv(100) == b"stdlib says hi"


def test_ferrossl_client_and_stdlib_server_in_memory(pki):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.cert_path, pki.key_path)
    obj, incoming, outgoing = stdlib_pair(sctx, server_side=True)
    conn = SSL.Connection(client_context(pki), None)
    conn.set_connect_state()
    conn.set_tlsext_host_name(b"localhost")
    pump_with_stdlib(conn, obj, incoming, outgoing, lambda: conn.get_state_string() == b"SSL negotiation finished successfully" and obj.version() is not None)
    assert conn.get_peer_certificate().get_subject().CN == "localhost"
    conn.sendall(b"ferrossl says hi")
    incoming.write(conn.bio_read(65536))
    assert obj.read(100) == b"ferrossl says hi"
    assert obj.cipher()[0] == conn.get_cipher_name()
