"""DTLS 1.3 (RFC 9147) from Python. A pyOpenSSL-style DTLS context negotiates it by default
(two connections over memory BIOs), as ``ferrossl.dtls`` connections and ``DtlsServer`` do
(UDP on 127.0.0.1, bounded with ``set_protocol_versions``), also with wolfSSL's example client
when ``tests/peers/wolfssl.sh`` built it. A maximum of DTLS 1.2 turns it off, a client
allowing both versions falls back to a 1.2 server, and what a side refuses fails the
handshake cleanly."""

from __future__ import annotations

import pathlib
import socket
import subprocess
import typing

import pytest
import test_dtls
from test_dtls import WAIT, Peer, client_for, echo
from tlshelp import handshake, memory_pair, pump

from ferrossl import SSL, crypto, dtls

# The PKI fixtures of the connection tests.
identity = test_dtls.identity
database = test_dtls.database
sockets = test_dtls.sockets

V = dtls.TlsProtocolVersion
Flags = dtls.TlsCertificateFlags
SRTP_LABEL = b"EXTRACTOR-dtls_srtp"
WOLFSSL = pathlib.Path(__file__).resolve().parents[2] / "target" / "peers" / "wolfssl"


# --- the pyOpenSSL API over memory BIOs -------------------------------------------------------


def dtls_contexts(
    pki: typing.Any, client_max: int, server_min: int, server_max: int, client_min: int = 0
) -> tuple[SSL.Context, SSL.Context]:
    """A client context that verifies the test CA and a server one with its certificate, each
    with the given version bounds (0: none set)."""
    cctx = SSL.Context(SSL.DTLS_METHOD)
    cctx.load_verify_locations(str(pki.ca_path))
    cctx.set_verify(SSL.VERIFY_PEER)
    if client_min:
        cctx.set_min_proto_version(client_min)
    if client_max:
        cctx.set_max_proto_version(client_max)
    sctx = SSL.Context(SSL.DTLS_METHOD)
    sctx.use_certificate_chain_file(str(pki.cert_path))
    sctx.use_privatekey_file(str(pki.key_path))
    if server_min:
        sctx.set_min_proto_version(server_min)
    if server_max:
        sctx.set_max_proto_version(server_max)
    return cctx, sctx


def test_the_dtls_version_constants_are_the_wire_values() -> None:
    # pyOpenSSL 26.4 and cryptography define no DTLS version; these are ferrossl's.
    assert SSL.DTLS1_2_VERSION == 0xFEFD
    assert SSL.DTLS1_3_VERSION == 0xFEFC


def test_a_dtls_context_negotiates_dtls13_when_its_maximum_allows_it(pki: typing.Any) -> None:
    cctx, sctx = dtls_contexts(pki, SSL.DTLS1_3_VERSION, 0, SSL.DTLS1_3_VERSION)
    client, server = memory_pair(pki, cctx, sctx)
    assert client.get_protocol_version_name() == "Unknown" and client.get_protocol_version() == 0
    handshake(client, server)
    for conn in (client, server):
        assert conn.get_protocol_version_name() == "DTLSv1.3"
        assert conn.get_protocol_version() == SSL.DTLS1_3_VERSION
        # DTLS 1.3 runs TLS 1.3's suites (no key exchange in their names).
        assert conn.get_cipher_name() in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
    assert client.get_peer_certificate().get_subject().CN == "localhost"
    # Datagrams keep their boundaries, both ways.
    client.send(b"first")
    client.send(b"second datagram")
    pump(client, server)
    assert server.recv(100) == b"first"
    assert server.recv(100) == b"second datagram"
    server.send(b"answer")
    pump(server, client)
    assert client.recv(100) == b"answer"
    # TLS 1.3's exporter on both ends; in it no context and an empty one are the same.
    km = client.export_keying_material(SRTP_LABEL, 60)
    assert len(km) == 60 and km == server.export_keying_material(SRTP_LABEL, 60)
    assert client.export_keying_material(b"label", 32, b"") == client.export_keying_material(b"label", 32)
    with_context = client.export_keying_material(b"label", 32, b"context")
    assert with_context == server.export_keying_material(b"label", 32, b"context") != km[:32]
    client.shutdown()
    pump(client, server)
    with pytest.raises(SSL.ZeroReturnError):
        server.recv(100)


def test_a_dtls13_session_resumes(pki: typing.Any) -> None:
    cctx, sctx = dtls_contexts(pki, SSL.DTLS1_3_VERSION, 0, SSL.DTLS1_3_VERSION)
    client, server = memory_pair(pki, cctx, sctx)
    handshake(client, server)
    # The server's NewSessionTicket follows the handshake; the client takes it with data.
    server.send(b"ticket behind")
    pump(server, client)
    assert client.recv(100) == b"ticket behind"
    pump(client, server)  # its ACK
    session = client.get_session()
    assert session is not None and not client.session_reused()
    client2, server2 = memory_pair(pki, cctx, sctx)
    client2.set_session(session)
    handshake(client2, server2)
    assert client2.get_protocol_version_name() == "DTLSv1.3"
    assert client2.session_reused() and server2.session_reused()
    # The chain verified in the first handshake comes back with the session.
    assert client2.get_peer_certificate().get_subject().CN == "localhost"
    km = client2.export_keying_material(SRTP_LABEL, 60)
    assert km == server2.export_keying_material(SRTP_LABEL, 60) != client.export_keying_material(SRTP_LABEL, 60)


def test_dtls13_is_the_default_and_a_dtls12_client_is_still_served(pki: typing.Any) -> None:
    cctx, sctx = dtls_contexts(pki, 0, 0, 0)
    client, server = memory_pair(pki, cctx, sctx)
    handshake(client, server)
    assert client.get_protocol_version_name() == server.get_protocol_version_name() == "DTLSv1.3"
    # A client held to DTLS 1.2 offers it only, which the server accepts.
    cctx, sctx = dtls_contexts(pki, SSL.DTLS1_2_VERSION, 0, 0)
    client, server = memory_pair(pki, cctx, sctx)
    handshake(client, server)
    for conn in (client, server):
        assert conn.get_protocol_version_name() == "DTLSv1.2"
        assert conn.get_protocol_version() == SSL.DTLS1_2_VERSION
    # RFC 5705's exporter: no context differs from an empty one, unlike DTLS 1.3's.
    assert client.export_keying_material(b"label", 32, b"") != client.export_keying_material(b"label", 32)


def _failed_handshake(client: SSL.Connection, server: SSL.Connection) -> None:
    with pytest.raises(SSL.Error):
        handshake(client, server)
    assert client.get_protocol_version_name() == server.get_protocol_version_name() == "Unknown"


def test_a_dtls13_minimum_refuses_a_dtls12_client(pki: typing.Any) -> None:
    cctx, sctx = dtls_contexts(pki, SSL.DTLS1_2_VERSION, SSL.DTLS1_3_VERSION, SSL.DTLS1_3_VERSION)
    _failed_handshake(*memory_pair(pki, cctx, sctx))


def test_a_client_allowing_dtls13_falls_back_to_a_dtls12_server(pki: typing.Any) -> None:
    # Its one ClientHello offers both versions; the server's DTLS 1.2 answer decides.
    cctx, sctx = dtls_contexts(pki, SSL.DTLS1_3_VERSION, 0, SSL.DTLS1_2_VERSION)
    client, server = memory_pair(pki, cctx, sctx)
    handshake(client, server)
    assert client.get_protocol_version_name() == server.get_protocol_version_name() == "DTLSv1.2"
    client.send(b"over 1.2")
    pump(client, server)
    assert server.recv(100) == b"over 1.2"


def test_a_dtls13_only_client_refuses_a_dtls12_server(pki: typing.Any) -> None:
    cctx, sctx = dtls_contexts(pki, SSL.DTLS1_3_VERSION, 0, SSL.DTLS1_2_VERSION, client_min=SSL.DTLS1_3_VERSION)
    _failed_handshake(*memory_pair(pki, cctx, sctx))


@pytest.mark.parametrize("client_min", [0, SSL.DTLS1_3_VERSION], ids=["client-allows-both", "client-dtls13-only"])
def test_cookie_exchange_without_dtlsv1_listen_admits_dtls13_clients(pki: typing.Any, client_min: int) -> None:
    cctx, sctx = dtls_contexts(pki, SSL.DTLS1_3_VERSION, 0, SSL.DTLS1_3_VERSION, client_min=client_min)
    sctx.set_options(SSL.OP_COOKIE_EXCHANGE)
    client, server = memory_pair(pki, cctx, sctx)
    handshake(client, server)
    assert client.get_protocol_version_name() == server.get_protocol_version_name() == "DTLSv1.3"


@pytest.mark.parametrize("client_min", [0, SSL.DTLS1_3_VERSION], ids=["client-allows-both", "client-dtls13-only"])
def test_dtlsv1_listen_admits_dtls13_clients(pki: typing.Any, client_min: int) -> None:
    cctx, sctx = dtls_contexts(pki, SSL.DTLS1_3_VERSION, 0, SSL.DTLS1_3_VERSION, client_min=client_min)
    sctx.set_options(SSL.OP_COOKIE_EXCHANGE)
    client, server = memory_pair(pki, cctx, sctx)
    with pytest.raises(SSL.WantReadError):
        client.do_handshake()
    pump(client, server)
    with pytest.raises(SSL.WantReadError):
        server.DTLSv1_listen()  # answers the ClientHello without keeping state
    handshake(client, server)
    assert client.get_protocol_version_name() == server.get_protocol_version_name() == "DTLSv1.3"


# --- ferrossl.dtls over UDP -------------------------------------------------------------------


def test_dtls13_between_two_ferrossl_dtls_endpoints(
    sockets: test_dtls.Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    server = dtls.DtlsServerConnection.new(sockets.server, identity)
    assert server.get_protocol_versions() == (V.UNKNOWN, V.UNKNOWN)
    server.set_protocol_versions(V.UNKNOWN, V.DTLS_1_3)
    peer = Peer(lambda: (echo(server)(), server))
    client = client_for(sockets.client, database)
    client.set_protocol_versions(V.DTLS_1_3, V.DTLS_1_3)
    assert client.get_protocol_versions() == (V.DTLS_1_3, V.DTLS_1_3)
    client.handshake(timeout=WAIT)
    assert client.protocol_version is V.DTLS_1_3
    assert client.ciphersuite_name is not None and client.ciphersuite_name.startswith(("TLS_AES_", "TLS_CHACHA20_"))
    assert client.peer_certificate == identity and client.peer_certificate_errors == Flags.NO_FLAGS
    sent = [b"one", b"two" * 100, b"three"]
    for datagram in sent:
        client.send(datagram)
        assert client.receive(timeout=WAIT) == datagram
    exporter = client.get_channel_binding_data(dtls.TlsChannelBindingType.EXPORTER)
    keys = client.export_keying_material(SRTP_LABEL, 60)
    client.close()
    received, server = peer.result()
    assert received == sent
    assert server.get_channel_binding_data(dtls.TlsChannelBindingType.EXPORTER) == exporter
    assert server.export_keying_material(SRTP_LABEL, 60) == keys
    assert client.protocol_version is V.UNKNOWN, "closed"


def _handshakes(
    sockets: test_dtls.Sockets,
    identity: dtls.TlsCertificate,
    database: crypto.X509Store,
    client_versions: tuple[V, V],
    server_versions: tuple[V, V],
) -> tuple[dtls.DtlsClientConnection, BaseException | None, dtls.DtlsServerConnection, BaseException | None]:
    """Runs both handshakes (bounded); returns each end with its exception or None."""
    server = dtls.DtlsServerConnection.new(sockets.server, identity)
    server.set_protocol_versions(*server_versions)

    def serve() -> BaseException | None:
        try:
            server.handshake(timeout=WAIT)
        except dtls.GioError as e:
            return e
        return None

    peer = Peer(serve)
    client = client_for(sockets.client, database)
    client.set_protocol_versions(*client_versions)
    client_error = None
    try:
        client.handshake(timeout=WAIT)
    except dtls.GioError as e:
        client_error = e
    return client, client_error, server, peer.result()


def test_versions_each_side_allows_decide(
    sockets: test_dtls.Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    # A server allowing DTLS 1.3 still answers a client that offers DTLS 1.2 only.
    client, client_error, server, server_error = _handshakes(
        sockets, identity, database, (V.UNKNOWN, V.DTLS_1_2), (V.DTLS_1_2, V.DTLS_1_3)
    )
    assert client_error is None and server_error is None
    assert client.protocol_version is server.protocol_version is V.DTLS_1_2
    client.close()


def test_a_client_allowing_dtls13_falls_back_to_a_dtls12_only_server(
    sockets: test_dtls.Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    client, client_error, server, server_error = _handshakes(
        sockets, identity, database, (V.UNKNOWN, V.DTLS_1_3), (V.UNKNOWN, V.DTLS_1_2)
    )
    assert client_error is None and server_error is None
    assert client.protocol_version is server.protocol_version is V.DTLS_1_2
    client.close()


def test_a_dtls13_only_server_refuses_a_dtls12_client(
    sockets: test_dtls.Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    _, client_error, server, server_error = _handshakes(
        sockets, identity, database, (V.UNKNOWN, V.DTLS_1_2), (V.DTLS_1_3, V.DTLS_1_3)
    )
    assert isinstance(client_error, dtls.TlsError) and isinstance(server_error, dtls.TlsError)
    assert server.protocol_version is V.UNKNOWN


def test_a_dtls13_client_and_a_dtls12_server_fail_on_the_version(
    sockets: test_dtls.Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    _, client_error, _, server_error = _handshakes(
        sockets, identity, database, (V.DTLS_1_3, V.DTLS_1_3), (V.UNKNOWN, V.DTLS_1_2)
    )
    assert isinstance(client_error, dtls.TlsError) and isinstance(server_error, dtls.TlsError)
    assert not isinstance(client_error, dtls.CertificateRequired), client_error
    assert "extended master secret" not in str(server_error), server_error


def test_tls_unique_is_refused_on_a_dtls13_association(
    sockets: test_dtls.Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    client, client_error, _, server_error = _handshakes(
        sockets, identity, database, (V.UNKNOWN, V.DTLS_1_3), (V.UNKNOWN, V.DTLS_1_3)
    )
    assert client_error is None and server_error is None
    assert client.protocol_version is V.DTLS_1_3
    with pytest.raises(dtls.ChannelBindingError):
        client.get_channel_binding_data(dtls.TlsChannelBindingType.UNIQUE)


def test_set_protocol_versions_checks_its_arguments(sockets: test_dtls.Sockets, identity: dtls.TlsCertificate) -> None:
    client = dtls.DtlsClientConnection.new(sockets.client, "localhost")
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        for target in (client, server):
            target.set_protocol_versions(V.UNKNOWN, V.DTLS_1_3)
            for bounds in (
                (V.DTLS_1_0, V.DTLS_1_2),  # refused on purpose
                (V.UNKNOWN, V.TLS_1_3),  # not a DTLS version
                (V.UNKNOWN, 999),  # no version at all
                (V.DTLS_1_3, V.DTLS_1_2),  # bounds that leave none
            ):
                with pytest.raises(ValueError):
                    target.set_protocol_versions(*bounds)
            with pytest.raises(TypeError):
                target.set_protocol_versions("DTLS_1_3", V.DTLS_1_3)  # type: ignore[arg-type]
            # A refused call leaves the bounds as they were.
            assert target.get_protocol_versions() == (V.UNKNOWN, V.DTLS_1_3)
            target.set_protocol_versions(202, 203)  # GIO's numbers as plain ints
            assert target.get_protocol_versions() == (V.DTLS_1_2, V.DTLS_1_3)


def _dtls_server_client(
    server: dtls.DtlsServer, database: crypto.X509Store, versions: tuple[V, V] | None
) -> tuple[bytes, V]:
    """One client of ``server``: handshake, one echoed datagram, close."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(server.local_address[:2])
        with client_for(sock, database) as client:
            if versions is not None:
                client.set_protocol_versions(*versions)
            client.handshake(timeout=WAIT)
            client.send(b"through the server")
            return client.receive(timeout=WAIT), client.protocol_version


def test_a_dtls_server_serves_dtls13_clients(identity: dtls.TlsCertificate, database: crypto.X509Store) -> None:
    # The stateless listener answers the ClientHello with a HelloRetryRequest and its cookie;
    # the association checks the cookie (bound to the client's address) and goes on.
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        server.set_protocol_versions(V.DTLS_1_3, V.DTLS_1_3)
        accepting = Peer(lambda: echo(server.accept(timeout=WAIT))())
        assert _dtls_server_client(server, database, (V.UNKNOWN, V.DTLS_1_3)) == (b"through the server", V.DTLS_1_3)
        assert accepting.result() == [b"through the server"]
        stats = server.get_stats()
        assert stats.associations_made == 1 and stats.hello_verify_requests == 1


def test_a_dtls_server_allowing_dtls13_serves_dtls12_clients(
    identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        server.set_protocol_versions(V.UNKNOWN, V.DTLS_1_3)

        def serve() -> list[bytes]:
            conn = server.accept(timeout=WAIT)
            assert conn.get_protocol_versions() == (V.UNKNOWN, V.DTLS_1_3), "the server's settings"
            return echo(conn)()

        accepting = Peer(serve)
        held_to_12 = (V.UNKNOWN, V.DTLS_1_2)
        assert _dtls_server_client(server, database, held_to_12) == (b"through the server", V.DTLS_1_2)
        assert accepting.result() == [b"through the server"]


def test_a_dtls_server_allowing_both_versions_serves_dtls13_clients(
    identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    # Behind the listener's stateless retry the association's first datagram is the first
    # fragment of the second ClientHello (the hybrid key share the retry asked for).
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        server.set_protocol_versions(V.UNKNOWN, V.DTLS_1_3)
        accepting = Peer(lambda: echo(server.accept(timeout=WAIT))())
        got = _dtls_server_client(server, database, (V.UNKNOWN, V.DTLS_1_3))
        assert got == (b"through the server", V.DTLS_1_3)
        assert accepting.result() == [b"through the server"]


# --- wolfSSL's example client -----------------------------------------------------------------


@pytest.mark.skipif(not (WOLFSSL / "client").exists(), reason="wolfSSL's client is not built (tests/peers/wolfssl.sh)")
def test_wolfssl_client_against_a_dtls13_server(pki: typing.Any, identity: dtls.TlsCertificate) -> None:
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        server.set_protocol_versions(V.DTLS_1_3, V.DTLS_1_3)
        port = server.local_address[1]
        # -u DTLS, -v 4 version 1.3, -x no client certificate, -A the CA to verify with; it
        # sends "hello wolfssl!", prints our answer and closes.
        proc = subprocess.Popen(
            ["./client", "-u", "-v", "4", "-x", "-h", "127.0.0.1", "-p", str(port), "-A", str(pki.ca_path)],
            cwd=WOLFSSL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            conn = server.accept(timeout=WAIT)
            conn.handshake(timeout=WAIT)
            assert conn.protocol_version is V.DTLS_1_3
            assert conn.receive(timeout=WAIT) == b"hello wolfssl!"
            conn.send(b"hello from ferrossl.dtls")
            out, _ = proc.communicate(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(WAIT)
        text = out.decode(errors="replace")
        assert proc.returncode == 0, text
        assert "SSL version is DTLSv1.3" in text and "hello from ferrossl.dtls" in text, text
