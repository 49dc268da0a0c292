"""Every Connection method and property, in memory-BIO mode and over sockets: state and
negotiated parameters, data calls, shutdown states, per-connection settings, and the socket
passthroughs."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from ferrossl import SSL, crypto
from tlshelp import client_context, handshake, memory_pair, pump, server_context

pytestmark = pytest.mark.timeout(60)


def test_negotiated_parameters(pki):
    client, server = memory_pair(pki)
    assert client.get_state_string() != b"SSL negotiation finished successfully"
    assert client.client_random() is None and client.server_random() is None
    assert client.get_protocol_version() == 0
    assert client.get_cipher_name() is None
    assert client.get_group_name() is None
    assert client.get_peer_certificate() is None
    handshake(client, server)
    assert client.get_protocol_version() == SSL.TLS1_3_VERSION
    assert len(client.client_random()) == 32 and client.client_random() == server.client_random()
    assert len(server.server_random()) == 32 and client.server_random() == server.server_random()
    assert client.get_cipher_name() == server.get_cipher_name()
    assert client.get_cipher_bits() in (128, 256)
    assert client.get_cipher_version() == "TLSv1.3"
    assert client.get_group_name() == server.get_group_name() is not None
    assert server.get_certificate().get_subject().CN == "localhost"
    assert client.get_certificate() is None
    assert [c.get_subject().CN for c in client.get_peer_cert_chain()] == ["localhost"]
    chain = client.get_verified_chain(as_cryptography=True)
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=localhost", "CN=ferrossl python test CA"]
    assert client.get_peer_certificate(as_cryptography=True).subject.rfc4514_string() == "CN=localhost"
    assert server.get_certificate(as_cryptography=True) is not None
    assert client.get_peer_cert_chain(as_cryptography=True)[0].serial_number == 2
    assert client.export_keying_material(b"EXPERIMENTAL-test", 32, b"ctx") == server.export_keying_material(b"EXPERIMENTAL-test", 32, b"ctx")


def test_tls12_master_key(pki):
    cctx = client_context(pki)
    cctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    client, server = memory_pair(pki, cctx)
    assert client.master_key() is None
    handshake(client, server)
    assert len(client.master_key()) == 48 and client.master_key() == server.master_key()


def test_data_calls_pending_peek_and_recv_into(pki):
    client, server = memory_pair(pki)
    handshake(client, server)
    assert client.send(bytearray(b"hello ")) == 6
    client.write(memoryview(b"world"))
    pump(client, server)
    assert server.recv(5, socket.MSG_PEEK) == b"hello"
    assert server.pending() == 11
    buf = bytearray(2)
    assert server.recv_into(buf) == 2 and buf == b"he"
    buf = bytearray(10)
    assert server.recv_into(buf, 1) == 1 and buf[:1] == b"l"
    got = b""
    while len(got) < 8:  # a read may stop at a record boundary
        got += server.read(100)
    assert got == b"lo world"
    assert server.pending() == 0


def test_io_methods_take_pyopenssl_arguments(pki):
    client, server = memory_pair(pki)
    handshake(client, server)
    # sendall answers how many bytes it sent, all of them (as pyOpenSSL's).
    assert client.sendall(b"x" * 40_000) == 40_000
    with pytest.warns(DeprecationWarning, match="str for buf"):
        assert client.send("é") == 2
    pump(client, server)
    # Flags other than MSG_PEEK are ignored.
    assert server.recv(5, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"xxxxx"
    got = b""
    while len(got) < 40_002:
        got += server.recv(65536)
    assert got == b"x" * 40_000 + "é".encode()
    with pytest.raises(TypeError, match="bufsiz must be an integer"):
        client.bio_read("10")
    with pytest.raises(TypeError, match="flags must be an integer"):
        client.sendall(b"x", "0")
    with pytest.raises(TypeError, match="buf must be"):
        client.bio_write(1.5)

    class Huge(bytes):
        def __len__(self):
            return 2**31

    # The length as the object reports it, checked after the flags (pyOpenSSL's order).
    with pytest.raises(ValueError, match="Cannot send more than"):
        client.send(Huge(b"x"))
    with pytest.raises(TypeError, match="flags must be an integer"):
        client.send(Huge(b"x"), "0")
    with pytest.raises(SSL.WantReadError):
        client.bio_read(10)


def test_io_methods_over_a_socket_refuse_the_bio_calls(pki):
    a, b = socket.socketpair()
    with a, b:
        conn = SSL.Connection(client_context(pki), a)
        with pytest.raises(TypeError, match="Connection sock was not None"):
            conn.bio_read(10)
        with pytest.raises(TypeError, match="Connection sock was not None"):
            conn.bio_write(b"x")


def test_io_methods_are_native_unless_a_subclass_overrides_them(pki):
    client, server = memory_pair(pki)
    # The fast path: the instance holds the native methods themselves.
    assert {"send", "write", "recv", "read", "bio_read", "bio_write"} <= set(vars(client))

    class Counting(SSL.Connection):
        sent = 0

        def send(self, buf, flags=0):
            Counting.sent += 1
            return super().send(buf, flags)

    counting = Counting(client_context(pki), None)
    counting.set_connect_state()
    assert "send" not in vars(counting) and "recv" in vars(counting)
    handshake(counting, server)
    assert counting.send(b"through the override") == 20
    assert Counting.sent == 1
    pump(counting, server)
    assert server.recv(100) == b"through the override"


def test_want_read_and_want_write(pki):
    client, server = memory_pair(pki)
    assert not client.want_read()
    with pytest.raises(SSL.WantReadError):
        client.do_handshake()
    assert client.want_read()
    # A memory BIO takes every write, so the connection never waits to write (as OpenSSL).
    assert not client.want_write()
    pump(client, server)
    handshake(client, server)
    assert not client.want_read() and not client.want_write()


def test_shutdown_states(pki):
    client, server = memory_pair(pki)
    handshake(client, server)
    assert client.get_shutdown() == 0
    assert client.shutdown() is False
    assert client.get_shutdown() == SSL.SENT_SHUTDOWN
    pump(client, server)
    with pytest.raises(SSL.ZeroReturnError):
        server.recv(1)
    assert server.get_shutdown() & SSL.RECEIVED_SHUTDOWN
    server.set_shutdown(SSL.SENT_SHUTDOWN | SSL.RECEIVED_SHUTDOWN)
    assert server.get_shutdown() == SSL.SENT_SHUTDOWN | SSL.RECEIVED_SHUTDOWN


def test_per_connection_settings(pki):
    cctx = client_context(pki)
    sctx = SSL.Context(SSL.TLS_METHOD)
    client = SSL.Connection(cctx, None)
    client.set_connect_state()
    server = SSL.Connection(sctx, None)
    server.set_accept_state()
    # The server's identity given to the connection, not the context.
    server.use_certificate(crypto.load_certificate(crypto.FILETYPE_PEM, pki.cert_pem))
    server.use_privatekey(crypto.load_privatekey(crypto.FILETYPE_PEM, pki.key_pem))
    assert server.set_options(SSL.OP_NO_TICKET) & SSL.OP_NO_TICKET
    client.set_verify(SSL.VERIFY_NONE)
    assert client.get_verify_mode() == SSL.VERIFY_NONE
    events = []
    client.set_info_callback(lambda conn, where, ret: events.append(where))
    client.set_alpn_protos([b"h2"])
    handshake(client, server)
    assert SSL.SSL_CB_HANDSHAKE_DONE in events
    assert client.get_alpn_proto_negotiated() == b""  # the server context has no ALPN callback
    assert server.get_selected_srtp_profile() == b""


def test_app_data_and_context_switch(pki):
    client, server = memory_pair(pki)
    assert client.get_app_data() is None
    client.set_app_data({"id": 1})
    assert client.get_app_data() == {"id": 1}
    assert client.get_context() is not None
    other = client_context(pki)
    client.set_context(other)
    assert client.get_context() is other
    handshake(client, server)


def test_servername_callback_switches_context(pki):
    first, second = server_context(pki), server_context(pki)
    second.set_app_data("second")
    seen = []

    def on_sni(conn):
        seen.append(conn.get_servername())
        conn.set_context(second)

    first.set_tlsext_servername_callback(on_sni)
    client, server = memory_pair(pki, sctx=first)
    client.set_tlsext_host_name(b"localhost")
    assert client.get_servername() == b"localhost"
    handshake(client, server)
    assert seen == [b"localhost"]
    assert server.get_context().get_app_data() == "second"
    assert server.get_servername() == b"localhost"


def test_makefile_is_not_available(pki):
    client, _ = memory_pair(pki)
    with pytest.raises(NotImplementedError):
        client.makefile()


def _stdlib_server(pki):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.cert_path, pki.key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    received = []

    def serve():
        raw, _ = listener.accept()
        raw.settimeout(10)
        with sctx.wrap_socket(raw, server_side=True) as tls:
            data = tls.recv(100)
            received.append(data)
            tls.sendall(data.upper())
            tls.recv(100)  # until the client's close_notify

    thread = threading.Thread(target=serve)
    thread.start()
    return listener, thread, received


def test_socket_mode_connect_connect_ex_and_passthrough(pki):
    for connect in ("connect", "connect_ex"):
        listener, thread, received = _stdlib_server(pki)
        conn = SSL.Connection(client_context(pki), socket.socket())
        conn.settimeout(10)  # an unknown attribute goes to the socket
        assert conn.gettimeout() == 10
        if connect == "connect":
            conn.connect(listener.getsockname())
        else:
            assert conn.connect_ex(listener.getsockname()) == 0
        conn.do_handshake()
        conn.sendall(b"over a socket")
        assert conn.recv(100) == b"OVER A SOCKET"
        conn.shutdown()
        conn.sock_shutdown(socket.SHUT_RDWR)
        thread.join(10)
        conn.close()
        listener.close()
        assert received == [b"over a socket"]


def test_socket_mode_accept_against_stdlib_client(pki):
    listener = socket.create_server(("127.0.0.1", 0))
    server = SSL.Connection(server_context(pki), listener)
    result = []

    def client():
        cctx = ssl.create_default_context(cafile=str(pki.ca_path))
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with cctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"ping")
                result.append(tls.recv(100))
                result.append(tls.version())

    thread = threading.Thread(target=client)
    thread.start()
    conn, addr = server.accept()
    assert addr[0] == "127.0.0.1"
    conn.settimeout(10)
    conn.do_handshake()
    assert conn.recv(100) == b"ping"
    conn.sendall(b"pong")
    thread.join(10)
    conn.close()
    listener.close()
    assert result == [b"pong", "TLSv1.3"]


def test_bio_calls_are_refused_in_socket_mode(pki):
    a, b = socket.socketpair()
    conn = SSL.Connection(client_context(pki), a)
    for call in (lambda: conn.bio_read(10), lambda: conn.bio_write(b"x"), conn.bio_shutdown):
        with pytest.raises(TypeError):
            call()
    a.close()
    b.close()


def test_a_call_while_another_thread_holds_the_connection_does_not_hang(pki):
    # Thread B's handshake holds the connection while its verify callback waits; a small
    # call from this thread must wait for the connection without holding the GIL, or B's
    # callback (and the timer that releases it) could never run again.
    entered, release = threading.Event(), threading.Event()

    def verify(conn, cert, errnum, depth, ok):
        entered.set()
        release.wait(10)
        return ok

    cctx = client_context(pki)
    cctx.set_verify(SSL.VERIFY_PEER, verify)
    client, server = memory_pair(pki, cctx)
    other = threading.Thread(target=handshake, args=(client, server))
    other.start()
    assert entered.wait(10)
    timer = threading.Timer(0.2, release.set)
    timer.start()
    assert client.pending() == 0
    other.join(10)
    assert not other.is_alive()
    client.send(b"after")
    pump(client, server)
    assert server.recv(10) == b"after"


def test_a_callback_may_read_on_another_connection_during_a_read(pki):
    # recv drives the client's handshake; its verify callback reads from another connection
    # on the same thread while the outer read is still going on.
    other_client, other_server = memory_pair(pki)
    handshake(other_client, other_server)
    other_client.send(b"from the other")
    pump(other_client, other_server)
    seen = []

    def verify(conn, cert, errnum, depth, ok):
        if not seen:
            seen.append(other_server.recv(100))
        return ok

    cctx = client_context(pki)
    cctx.set_verify(SSL.VERIFY_PEER, verify)
    client, server = memory_pair(pki, cctx)
    with pytest.raises(SSL.WantReadError):
        client.recv(10)
    pump(client, server)
    with pytest.raises(SSL.WantReadError):
        server.do_handshake()
    pump(server, client)
    with pytest.raises(SSL.WantReadError):
        client.recv(10)
    assert seen == [b"from the other"]
