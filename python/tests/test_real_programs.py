"""Behaviours that real pyOpenSSL programs (Twisted, urllib3, select()-driven servers, threaded
clients) depend on and that pyOpenSSL's own suite never checks. Each test names the program
pattern it stands for; expected values come from running the same code on pyOpenSSL."""

from __future__ import annotations

import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
import unittest.mock

import pytest
from cryptography.hazmat.primitives import serialization

import ferrossl
from ferrossl import SSL, bio, crypto

from tlshelp import client_context, handshake, memory_pair, pump, server_context

# --- 1. ALPN with a client that offers none ---------------------------------------------


def test_alpn_select_callback_is_not_asked_when_the_client_offers_none(pki):
    asked = []
    sctx = server_context(pki)
    sctx.set_alpn_select_callback(lambda conn, offered: asked.append(offered) or b"")
    client, server = memory_pair(pki, sctx=sctx)
    handshake(client, server)
    assert asked == []
    assert client.get_alpn_proto_negotiated() == server.get_alpn_proto_negotiated() == b""


def test_server_connection_alpn_protos_with_a_client_offering_none(pki):
    client, server = memory_pair(pki)
    server.set_alpn_protos([b"h2", b"http/1.1"])
    handshake(client, server)
    assert server.get_alpn_proto_negotiated() == b""


def test_alpn_callback_returning_empty_bytes_still_aborts(pki):
    sctx = server_context(pki)
    sctx.set_alpn_select_callback(lambda conn, offered: b"")
    cctx = client_context(pki)
    cctx.set_alpn_protos([b"h2"])
    client, server = memory_pair(pki, cctx=cctx, sctx=sctx)
    with pytest.raises(SSL.Error) as info:
        handshake(client, server)
    assert info.value.args[0][0][2] == "no application protocol"
    pump(server, client)
    with pytest.raises(SSL.Error) as info:
        client.do_handshake()
    assert info.value.args[0][0][2] == "tlsv1 alert no application protocol"


# --- 2. Socket mode reads one record at a time --------------------------------------------


def _socket_pair(pki, client_ctx=None):
    """A handshaken (client, server) pair of Connections over a connected socket pair."""
    a, b = socket.socketpair()
    client = SSL.Connection(client_ctx or client_context(pki), a)
    client.set_connect_state()
    server = SSL.Connection(server_context(pki), b)
    server.set_accept_state()
    t = threading.Thread(target=client.do_handshake)
    t.start()
    server.do_handshake()
    t.join(10)
    assert not t.is_alive()
    return client, server


def _readable(sock, timeout=2.0) -> bool:
    return bool(select.select([sock], [], [], timeout)[0])


@pytest.mark.timeout(30)
def test_select_driven_server_sees_close_notify_after_the_last_data(pki):
    client, server = _socket_pair(pki)
    client.sendall(b"last words")
    client.shutdown()  # close_notify rides right behind the data
    time.sleep(0.1)
    assert _readable(server)
    assert server.recv(1024) == b"last words"
    # The close_notify must still be in the socket for select() to report.
    assert _readable(server), "close_notify was swallowed with the data record"
    with pytest.raises(SSL.ZeroReturnError):
        server.recv(1024)


@pytest.mark.timeout(30)
def test_python_ssl_client_unwrap_completes_against_a_select_driven_server(pki):
    a, b = socket.socketpair()
    server = SSL.Connection(server_context(pki), b)
    server.set_accept_state()
    cctx = ssl.create_default_context(cafile=str(pki.ca_path))
    cctx.check_hostname = False
    client = cctx.wrap_socket(a, do_handshake_on_connect=False)
    t = threading.Thread(target=client.do_handshake)
    t.start()
    server.do_handshake()
    t.join(10)
    client.sendall(b"bye")
    unwrapped = []
    t = threading.Thread(target=lambda: unwrapped.append(client.unwrap()))
    t.start()
    time.sleep(0.2)  # data and close_notify both wait in the socket
    got, closed = b"", False
    deadline = time.monotonic() + 5
    while not closed and time.monotonic() < deadline:
        if not _readable(b, 0.5):
            continue
        try:
            got += server.recv(1024)
        except SSL.ZeroReturnError:
            server.shutdown()
            closed = True
    assert got == b"bye" and closed
    t.join(5)
    assert unwrapped, "the client's unwrap() did not complete"


# --- 3. No deadlock between threads -------------------------------------------------------


@pytest.mark.timeout(60, method="thread")
def test_get_shutdown_while_another_thread_is_in_sendall(pki):
    client, server = _socket_pair(pki)
    payload = b"x" * (8 << 20)  # far more than the socket buffers hold
    writer = threading.Thread(target=server.sendall, args=(payload,))
    writer.start()
    time.sleep(0.2)  # the writer now waits for the socket, inside sendall
    states = []
    prober = threading.Thread(target=lambda: states.append(server.get_shutdown()))
    prober.start()
    time.sleep(0.2)
    # Before the fix the prober held the GIL while waiting for the connection, and this
    # thread never ran again.
    received = 0
    deadline = time.monotonic() + 30
    while received < len(payload) and time.monotonic() < deadline:
        received += len(client.recv(1 << 16))
    writer.join(10)
    prober.join(10)
    assert received == len(payload)
    assert states == [0]


@pytest.mark.timeout(30, method="thread")
def test_shutdown_goes_through_while_another_thread_waits_in_recv_into(pki):
    client, server = _socket_pair(pki)
    outcome = []

    def read():
        try:
            server.recv_into(bytearray(1024))
        except SSL.ZeroReturnError:
            outcome.append("closed")

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.2)  # the reader waits for data that does not come
    started = time.monotonic()
    closer = threading.Thread(target=server.shutdown)
    closer.start()
    closer.join(5)
    assert not closer.is_alive(), "shutdown() waited for the blocked reader"
    assert time.monotonic() - started < 2
    with pytest.raises(SSL.ZeroReturnError):
        client.recv(1024)
    client.shutdown()
    reader.join(5)
    assert outcome == ["closed"]


@pytest.mark.timeout(30, method="thread")
def test_send_goes_through_while_a_client_reader_gets_session_tickets(pki):
    # The TLS 1.3 server's session tickets reach the client after its handshake: a reader
    # thread that receives them (no data) must not hold the connection while it waits on.
    client, server = _socket_pair(pki)
    got = []
    reader = threading.Thread(target=lambda: got.append(client.recv(1024)))
    reader.start()
    time.sleep(0.3)  # the reader has taken the tickets and waits for data
    sender = threading.Thread(target=client.send, args=(b"request",))
    sender.start()
    sender.join(5)
    assert not sender.is_alive(), "send() waited for the reader"
    assert server.recv(1024) == b"request"
    server.send(b"response")
    reader.join(5)
    assert got == [b"response"]


def test_recv_of_nothing_over_a_socket_returns_at_once(pki):
    client, server = _socket_pair(pki)
    assert server.recv(0) == b""


# --- 4. Monkeypatching ----------------------------------------------------------------------


def test_mock_patch_of_a_method_reaches_existing_and_new_connections(pki):
    ctx = client_context(pki)
    existing = SSL.Connection(ctx, None)
    with unittest.mock.patch("ferrossl.SSL.Connection.do_handshake") as patched:
        existing.do_handshake()
        SSL.Connection(ctx, None).do_handshake()
        assert patched.call_count == 2
    with unittest.mock.patch.object(SSL.Connection, "recv", return_value=b"mocked"):
        assert existing.recv(10) == b"mocked"
    # Unpatched again: the real method runs.
    existing.set_connect_state()
    with pytest.raises(SSL.WantReadError):
        existing.do_handshake()


def test_subclass_overrides_of_io_methods_are_kept(pki):
    class Recording(SSL.Connection):
        def send(self, buf, flags=0):
            self.sent = bytes(buf)
            return len(buf)

    conn = Recording(client_context(pki), None)
    assert conn.send(b"abc") == 3 and conn.sent == b"abc"


# --- 5. Identity as programs probe it -------------------------------------------------------


def test_identity_once_installed_as_pyopenssl(pki):
    ferrossl.install_as_pyopenssl()
    import OpenSSL
    import OpenSSL.SSL
    import OpenSSL.crypto

    assert OpenSSL.__version__ == "26.4.0"
    assert ferrossl.__version__ != OpenSSL.__version__
    assert OpenSSL.version.__version__ == "26.4.0"
    ctx = OpenSSL.SSL.Context(OpenSSL.SSL.TLS_METHOD)
    assert type(ctx).__module__.startswith("OpenSSL")
    assert OpenSSL.SSL.Connection.__module__ == "OpenSSL.SSL"
    assert OpenSSL.SSL.Error.__module__ == "OpenSSL.SSL"
    assert OpenSSL.crypto.X509.__module__ == "OpenSSL.crypto"
    # urllib3's check for a usable pyOpenSSL, Twisted's handle on the context.
    assert getattr(OpenSSL.crypto.X509(), "_x509", None) is not None
    assert ctx._context is not None
    assert OpenSSL.SSL.Connection(ctx, None)._ssl is not None
    assert OpenSSL.crypto.PKey()._pkey is not None


def test_ssleay_version_text_parses_as_openssl():
    text = SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode()
    name, version = text.split()[:2]
    assert name == "OpenSSL"
    major, minor, patch = (int(p) for p in version.split("."))
    assert SSL.OPENSSL_VERSION_NUMBER >> 20 == (major << 8) | (minor << 4) | patch
    assert "ferrossl" in text


def test_certificate_digest_offers_md5_fingerprints(pki):
    cert = crypto.load_certificate(crypto.FILETYPE_PEM, pki.cert_pem)
    md5 = cert.digest("md5")
    assert len(md5.split(b":")) == 16
    with pytest.raises(ValueError, match="No such digest method"):
        cert.digest("no-such-digest")


# --- 6. Error texts that programs match -----------------------------------------------------


def test_plain_http_to_a_tls_server_is_an_http_request_error(pki):
    server = SSL.Connection(server_context(pki), None)
    server.set_accept_state()
    server.bio_write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    with pytest.raises(SSL.Error) as info:
        server.do_handshake()
    assert info.value.args[0][0][2] == "http request"
    # No alert is sent to a client that would not understand it.
    with pytest.raises(SSL.WantReadError):
        server.bio_read(1024)


def test_received_alert_reasons_are_openssls(pki):
    untrusting = SSL.Context(SSL.TLS_METHOD)
    untrusting.set_verify(SSL.VERIFY_PEER)
    client, server = memory_pair(pki, cctx=untrusting)
    with pytest.raises(SSL.Error):
        handshake(client, server)
    with pytest.raises(SSL.Error) as info:
        pump(client, server)
        server.do_handshake()
    assert info.value.args[0][0][2] == "tlsv1 alert unknown ca"


def test_plain_http_over_a_socket_is_told_and_not_answered(pki):
    a, b = socket.socketpair()
    server = SSL.Connection(server_context(pki), b)
    server.set_accept_state()
    a.sendall(b"GET / HTTP/1.0\r\n\r\n")
    for _ in range(2):  # said again as it was first said
        with pytest.raises(SSL.Error) as info:
            server.do_handshake()
        assert info.value.args[0][0][2] == "http request"
    a.settimeout(0.5)
    with pytest.raises(TimeoutError):
        a.recv(100)  # no alert for a client that would not understand it


def test_write_after_shutdown_is_protocol_is_shutdown(pki):
    client, server = memory_pair(pki)
    handshake(client, server)
    client.shutdown()
    with pytest.raises(SSL.Error) as info:
        client.send(b"too late")
    assert info.value.args[0][0][2] == "protocol is shutdown"


@pytest.mark.timeout(30, method="thread")
def test_a_failed_handshake_closes_without_losing_its_alert(pki):
    # The client stops reading at the record that failed; the server's last records are
    # still in the client's socket. Closing it unread would reset the connection, and the
    # server would see ECONNRESET instead of the alert that says why.
    listener = socket.create_server(("127.0.0.1", 0))
    outcome = []

    def serve():
        sock, _ = listener.accept()
        with sock:
            conn = SSL.Connection(server_context(pki), sock)
            conn.set_accept_state()
            try:
                conn.do_handshake()
            except SSL.Error as e:
                outcome.append(e)

    t = threading.Thread(target=serve)
    t.start()
    untrusting = SSL.Context(SSL.TLS_METHOD)
    untrusting.set_verify(SSL.VERIFY_PEER)
    with socket.create_connection(listener.getsockname()) as sock:
        client = SSL.Connection(untrusting, sock)
        client.set_connect_state()
        with pytest.raises(SSL.Error):
            client.do_handshake()
    t.join(10)
    listener.close()
    assert len(outcome) == 1 and not isinstance(outcome[0], SSL.SysCallError), outcome
    assert outcome[0].args[0][0][2] == "tlsv1 alert unknown ca"


# --- 7. set_passwd_cb edge cases ------------------------------------------------------------


@pytest.fixture
def encrypted_key(pki, tmp_path):
    key = serialization.load_pem_private_key(pki.key_pem, None)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    path = tmp_path / "encrypted.pem"
    path.write_bytes(pem)
    return str(path)


def test_overlong_passphrase_is_truncated_then_fails_to_decrypt(encrypted_key):
    ctx = SSL.Context(SSL.TLS_METHOD)
    seen = []

    def passphrase(maxlen, verify, userdata):
        seen.append(maxlen)
        return b"secret" + b"!" * (maxlen * 2)

    ctx.set_passwd_cb(passphrase)
    with pytest.raises(SSL.Error) as info:
        ctx.use_privatekey_file(encrypted_key)
    assert "bad decrypt" in [entry[2] for entry in info.value.args[0]]
    assert seen and seen[0] > 0


def test_passphrase_that_is_not_bytes_is_a_value_error(encrypted_key):
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_passwd_cb(lambda maxlen, verify, userdata: "secret")
    with pytest.raises(ValueError, match="^Bytes expected$"):
        ctx.use_privatekey_file(encrypted_key)


# --- 8. The TLSSocket family's server side --------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.timeout(30, method="thread")
def test_tls_socket_server_receives_what_openssl_s_client_sends(pki):
    ctx = bio.TLSServerContext()
    assert ctx.load_certs(str(pki.cert_path), str(pki.key_path))
    listener = bio.TLSSocket(None, ctx)
    listener.bind(0, "127.0.0.1")
    listener.listen()
    client = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{listener.port}", "-quiet"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        accepted = listener.accept()

        def type_a_line():
            time.sleep(0.3)  # the server is already waiting in receive()
            client.stdin.write(b"hello from s_client\n")
            client.stdin.flush()

        threading.Thread(target=type_a_line).start()
        # Less than asked for arrives: receive() returns it, as a socket's recv would.
        assert accepted.receive(1024) == b"hello from s_client\n"
        accepted.send(b"hello from ferrossl\n")
        assert client.stdout is not None
        assert client.stdout.readline() == b"hello from ferrossl\n"
        accepted.close()
    finally:
        client.kill()
        client.wait(10)
        listener.close()
