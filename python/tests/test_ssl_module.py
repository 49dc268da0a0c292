"""ferrossl's own tests of the pyOpenSSL-shaped module: memory BIOs and sockets, errors,
callbacks, interop with the stdlib ssl module and OpenSSL, and misuse."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading

import pytest

import ferrossl
from ferrossl import SSL, crypto
from tlshelp import client_context, handshake, memory_pair, pump, server_context

pytestmark = pytest.mark.timeout(60)


def test_memory_bio_handshake_data_and_close(pki):
    client, server = memory_pair(pki)
    handshake(client, server)
    assert client.get_protocol_version_name() == "TLSv1.3"
    assert client.get_peer_certificate().get_subject().CN == "localhost"
    client.sendall(b"x" * 100_000)
    pump(client, server)
    got = b""
    while len(got) < 100_000:
        got += server.recv(65536)
    assert got == b"x" * 100_000
    assert client.shutdown() is False
    pump(client, server)
    with pytest.raises(SSL.ZeroReturnError):
        server.recv(10)
    assert server.shutdown() is True


def test_want_read_and_unexpected_eof(pki):
    client, server = memory_pair(pki)
    with pytest.raises(SSL.WantReadError):
        server.do_handshake()
    handshake(client, server)
    with pytest.raises(SSL.WantReadError):
        server.recv(1)
    server.bio_shutdown()
    with pytest.raises(SSL.SysCallError) as e:
        server.recv(1)
    assert e.value.args == (-1, "Unexpected EOF")


def test_verify_callback_sees_connection_and_can_reject(pki):
    seen = []
    cctx = client_context(pki)

    def verify(conn, cert, errnum, depth, ok):
        seen.append((conn, cert.get_subject().CN, errnum, depth, ok))
        return ok

    cctx.set_verify(SSL.VERIFY_PEER, verify)
    client, server = memory_pair(pki, cctx=cctx)
    handshake(client, server)
    assert [s[1:] for s in seen] == [("ferrossl python test CA", 0, 1, 1), ("localhost", 0, 0, 1)]
    assert all(s[0] is client for s in seen)

    cctx.set_verify(SSL.VERIFY_PEER, lambda *args: False)
    client, server = memory_pair(pki, cctx=cctx)
    with pytest.raises(SSL.Error):
        handshake(client, server)


def test_callback_exceptions_are_reraised(pki):
    cctx = client_context(pki)

    class Boom(Exception):
        pass

    def verify(*args):
        raise Boom("from the callback")

    cctx.set_verify(SSL.VERIFY_PEER, verify)
    client, server = memory_pair(pki, cctx=cctx)
    with pytest.raises(Boom):
        handshake(client, server)


def test_alpn_sni_keylog_and_info_callbacks(pki):
    sctx = server_context(pki)
    names, lines, events = [], [], []
    sctx.set_tlsext_servername_callback(lambda conn: names.append(conn.get_servername()))
    sctx.set_alpn_select_callback(lambda conn, offered: offered[-1])
    sctx.set_info_callback(lambda conn, where, ret: events.append(where))
    cctx = client_context(pki)
    cctx.set_alpn_protos([b"h2", b"http/1.1"])
    cctx.set_keylog_callback(lambda conn, line: lines.append(line))
    client, server = memory_pair(pki, cctx=cctx, sctx=sctx)
    client.set_tlsext_host_name(b"localhost")
    handshake(client, server)
    assert names == [b"localhost"]
    assert client.get_alpn_proto_negotiated() == b"http/1.1"
    assert any(line.startswith(b"CLIENT_TRAFFIC_SECRET_0 ") for line in lines)
    assert SSL.SSL_CB_HANDSHAKE_START in events and SSL.SSL_CB_HANDSHAKE_DONE in events


def test_session_resumption(pki):
    cctx = client_context(pki)
    sctx = server_context(pki)
    client, server = memory_pair(pki, cctx=cctx, sctx=sctx)
    handshake(client, server)
    server.send(b"tickets")
    pump(server, client)
    client.recv(100)
    session = client.get_session()
    client2, server2 = memory_pair(pki, cctx=cctx, sctx=sctx)
    client2.set_session(session)
    handshake(client2, server2)
    assert client2.session_reused()


def test_dtls_over_memory_bios(pki):
    sctx = SSL.Context(SSL.DTLS_METHOD)
    sctx.use_certificate_chain_file(str(pki.cert_path))
    sctx.use_privatekey_file(str(pki.key_path))
    sctx.set_tlsext_use_srtp(b"SRTP_AES128_CM_SHA1_80")
    cctx = SSL.Context(SSL.DTLS_METHOD)
    cctx.set_tlsext_use_srtp(b"SRTP_AES128_CM_SHA1_80")
    client, server = memory_pair(pki, cctx=cctx, sctx=sctx)
    for _ in range(10):
        for a, b in ((client, server), (server, client)):
            try:
                a.do_handshake()
            except SSL.WantReadError:
                pass
            pump(a, b)
    assert client.get_selected_srtp_profile() == b"SRTP_AES128_CM_SHA1_80"
    km = client.export_keying_material(b"EXTRACTOR-dtls_srtp", 60)
    assert km == server.export_keying_material(b"EXTRACTOR-dtls_srtp", 60)
    client.send(b"datagram")
    pump(client, server)
    assert server.recv(100) == b"datagram"


def test_stdlib_ssl_server_with_ferrossl_socket_client(pki):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.cert_path, pki.key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        raw, _ = listener.accept()
        with sctx.wrap_socket(raw, server_side=True) as tls:
            tls.sendall(b"echo: " + tls.recv(100))

    t = threading.Thread(target=serve)
    t.start()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = SSL.Connection(client_context(pki), sock)
    conn.set_connect_state()
    conn.set_tlsext_host_name(b"localhost")
    conn.do_handshake()
    conn.sendall(b"hi")
    assert conn.recv(100) == b"echo: hi"
    t.join(10)
    listener.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_s_client_against_ferrossl_socket_server(pki):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki.ca_path), "-verify_return_error", "-quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        proc.stdin.write(b"hello from openssl\n")
        proc.stdin.flush()
        raw, _ = listener.accept()
        raw.settimeout(10)
        conn = SSL.Connection(server_context(pki), raw)
        conn.set_accept_state()
        conn.do_handshake()
        assert conn.recv(100) == b"hello from openssl\n"
        conn.sendall(b"hello from ferrossl\n")
        assert proc.stdout.readline() == b"hello from ferrossl\n"
        conn.shutdown()
    finally:
        proc.kill()
        proc.wait(10)
        listener.close()


def test_nonblocking_socket_raises_want_read(pki):
    a, b = socket.socketpair()
    a.setblocking(False)
    conn = SSL.Connection(client_context(pki), a)
    conn.set_connect_state()
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()
    a.close()
    b.close()


def test_misuse_gets_exceptions_not_crashes(pki):
    with pytest.raises(TypeError):
        SSL.Context("TLS")
    with pytest.raises(ValueError):
        SSL.Context(99)
    with pytest.raises(SSL.Error):
        SSL.Context(SSL.TLSv1_METHOD)
    ctx = SSL.Context(SSL.TLS_METHOD)
    with pytest.raises(TypeError):
        SSL.Connection("not a context")
    with pytest.raises(TypeError):
        ctx.set_verify("peer")
    with pytest.raises(TypeError):
        ctx.use_certificate("not a cert")
    with pytest.raises(SSL.Error):
        ctx.use_certificate_file("/no/such/file.pem")
    conn = SSL.Connection(ctx, None)
    with pytest.raises(SSL.Error):
        conn.do_handshake()  # no role set
    with pytest.raises(TypeError):
        conn.bio_read("ten")
    with pytest.raises(TypeError):
        conn.set_tlsext_host_name("text")
    with pytest.raises(ValueError):
        conn.set_tlsext_host_name(b"127.0.0.1")
    conn.set_connect_state()
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()
    with pytest.raises(SSL.Error):
        conn.bio_write(b"\x00" * (1 << 20))
        conn.do_handshake()
    with pytest.raises(crypto.Error):
        crypto.load_certificate(crypto.FILETYPE_PEM, b"garbage")


def test_install_as_pyopenssl():
    ferrossl.install_as_pyopenssl()
    from OpenSSL import SSL as S, crypto as C  # noqa: N811

    assert S is SSL and C is crypto
    assert b"ferrossl" in SSL.OpenSSL_version(SSL.OPENSSL_VERSION)


def test_constants_match_pyopenssl():
    """Every integer constant both modules define has the same value (real pyOpenSSL, when
    installed, runs in a separate interpreter so it cannot be confused with ours)."""
    import json
    import sys

    probe = (
        "import json, OpenSSL.SSL as S\n"
        "print(json.dumps({k: v for k, v in vars(S).items() if k.isupper() and isinstance(v, int)}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("pyOpenSSL is not installed for the cross-check")
    theirs = json.loads(out.stdout)
    ours = {k: v for k, v in vars(SSL).items() if k.isupper() and isinstance(v, int)}
    shared = sorted(set(theirs) & set(ours))
    assert len(shared) > 60
    # OP_ALL and the version number describe the library underneath, not the API.
    mismatched = {k: (ours[k], theirs[k]) for k in shared if ours[k] != theirs[k] and k not in {"OPENSSL_VERSION_NUMBER", "OP_ALL"}}
    assert mismatched == {}
    missing = sorted(set(theirs) - set(ours))
    assert missing == [], f"constants pyOpenSSL has and ferrossl lacks: {missing}"
