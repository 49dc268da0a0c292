"""ferrossl.dtls.DtlsServer (many clients on one UDP socket) over 127.0.0.1 and ::1: concurrent
echo clients, the settings accepted connections start with, the stateless cookie exchange,
accept timeouts, cancellation and close; the TlsInteraction asked for an encrypted key's
password; DTLS-SRTP and keying-material export; `openssl s_client -dtls1_2` as a client."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import threading
import time
import typing

import pytest
import test_dtls
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from test_dtls import WAIT, Output, Peer, _ipv6_available, _loopback, _need_openssl, _stop, client_for, echo

from ferrossl import SSL, crypto, dtls

# The PKI fixtures of the connection tests.
identity = test_dtls.identity
database = test_dtls.database
leafs = test_dtls.leafs

CLIENTS = 20
DATAGRAMS = 5


def _client_socket(server: dtls.DtlsServer) -> socket.socket:
    address = server.local_address
    sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(address[:2])
    return sock


def _exchange(client: dtls.DtlsClientConnection, datagram: bytes) -> bytes:
    """Sends ``datagram`` and waits for the echo, resending as a UDP application does (the
    loopback may drop a datagram when many clients burst at once)."""
    for _ in range(5):
        client.send(datagram)
        try:
            # A late echo of an earlier datagram (after a resend) is skipped.
            while (got := client.receive(timeout=2.0)) != datagram:
                assert got, "the server ended the association"
            return got
        except dtls.TimedOut:
            continue
    raise AssertionError("no echo after 5 sends")


def _echo_clients(server: dtls.DtlsServer, database: crypto.X509Store, n: int) -> list[list[bytes]]:
    """Runs ``n`` clients on threads, each sending DATAGRAMS datagrams; returns what each
    accepted connection echoed."""

    def acceptor() -> list[Peer]:
        return [Peer(echo(server.accept(timeout=WAIT))) for _ in range(n)]

    accepting = Peer(acceptor)

    def run_client(i: int) -> list[bytes]:
        with _client_socket(server) as sock, client_for(sock, database) as client:
            client.handshake(timeout=WAIT)
            return [_exchange(client, f"client {i} datagram {j}".encode() * (j + 1)) for j in range(DATAGRAMS)]

    clients = [Peer(lambda i=i: run_client(i)) for i in range(n)]
    replies = [c.result(timeout=60) for c in clients]
    for i, got in enumerate(replies):
        assert got == [f"client {i} datagram {j}".encode() * (j + 1) for j in range(DATAGRAMS)]
    return [p.result(timeout=60) for p in accepting.result(timeout=60)]


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def test_many_concurrent_clients_are_echoed_intact(
    family: socket.AddressFamily, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    host = _loopback(family)
    if family == socket.AF_INET6 and not _ipv6_available():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    with dtls.DtlsServer((host, 0), identity) as server:
        assert server.local_address[0] == host and server.local_address[1] != 0
        echoed = _echo_clients(server, database, CLIENTS)
        # Each accepted connection saw its client's datagrams (resends may repeat one).
        assert len(echoed) == CLIENTS
        for got in echoed:
            assert len(set(got)) == DATAGRAMS
        stats = server.stats
        assert stats.associations_made == CLIENTS
        assert stats.hello_verify_requests >= CLIENTS, "every client went through the cookie exchange"
        assert server.half_open_count == 0


def test_accepted_connections_start_with_the_servers_settings(
    identity: dtls.TlsCertificate, database: crypto.X509Store, pki: typing.Any
) -> None:
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        server.authentication_mode = dtls.TlsAuthenticationMode.REQUIRED
        server.set_database(database)
        server.advertised_protocols = ["echo/1"]
        server.require_close_notify = False

        def serve() -> list[typing.Any]:
            outcomes = []
            for _ in range(2):
                conn = server.accept(timeout=WAIT)
                try:
                    conn.handshake(timeout=WAIT)
                    outcomes.append((conn, conn.peer_certificate, conn.negotiated_protocol))
                except dtls.GioError as e:
                    outcomes.append(e)
            return outcomes

        peer = Peer(serve)
        with _client_socket(server) as sock:
            anonymous = client_for(sock, database)
            with pytest.raises(dtls.CertificateRequired):
                anonymous.handshake(timeout=WAIT)
                # DTLS 1.3: the server's refusal comes after the client's handshake.
                anonymous.receive(timeout=WAIT)
            ca = x509.load_pem_x509_certificate(pki.ca_pem)
            assert anonymous.accepted_cas == [ca.subject.public_bytes()]
            assert anonymous.get_accepted_cas() == anonymous.accepted_cas
        with _client_socket(server) as sock:
            known = client_for(sock, database)
            known.certificate = identity
            known.advertised_protocols = ["echo/1"]
            known.handshake(timeout=WAIT)
            assert known.negotiated_protocol == "echo/1"
            refused, (conn, seen, alpn) = peer.result()
            assert isinstance(refused, dtls.BadCertificate)
            assert seen == identity and alpn == "echo/1"
            assert isinstance(conn, dtls.DtlsServerConnection) and conn.base_socket is None
            assert conn.authentication_mode is dtls.TlsAuthenticationMode.REQUIRED
            assert conn.advertised_protocols == ["echo/1"] and conn.database is database
            assert conn.require_close_notify is False and conn.certificate is identity
            known.send(b"ping")
            assert conn.receive(timeout=WAIT) == b"ping"
            known.close()
            assert conn.receive(timeout=WAIT) == b""
            conn.close()


def _eventually(done: typing.Callable[[], bool]) -> None:
    """Waits (bounded) until ``done()``."""
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.01)


def _client_hello() -> bytes:
    """A DTLS client's first datagram: a ClientHello without a cookie."""
    client = SSL.Connection(SSL.Context(SSL.DTLS_METHOD), None)
    client.set_connect_state()
    with pytest.raises(SSL.WantReadError):
        client.do_handshake()
    return client.bio_read(65535)


def test_cookieless_client_hellos_get_a_hello_retry_request_and_no_state(identity: dtls.TlsCertificate) -> None:
    hello = _client_hello()
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        try:
            for s in senders:
                s.settimeout(WAIT)
                s.sendto(hello, server.local_address)
                reply = s.recv(65535)
                # RFC 9147 §5.1 (the hello offers DTLS 1.3): a handshake record holding a
                # HelloRetryRequest (a ServerHello, type 2), no larger than the ClientHello.
                assert reply[0] == 22 and reply[13] == 2 and len(reply) <= len(hello)
            s.sendto(b"not a DTLS record", server.local_address)
        finally:
            for s in senders:
                s.close()
        # The server counts a HelloVerifyRequest just after sending it.
        _eventually(lambda: server.get_stats().hello_verify_requests == 3 and server.stats.dropped == 1)
        stats = server.get_stats()
        assert isinstance(stats, dtls.ServerStats)
        assert stats.associations_made == 0 and stats.dropped == 1, "the stray datagram was dropped"
        assert server.association_count == 0 and server.get_half_open_count() == 0


def test_limits_are_kept_and_checked(identity: dtls.TlsCertificate) -> None:
    limits = dtls.ServerLimits(max_half_open=8, max_associations=16, handshake_timeout=5.0, idle_timeout=60.0)
    with dtls.DtlsServer(("127.0.0.1", 0), identity, limits=limits) as server:
        assert server.limits == limits
        assert dtls.ServerLimits().max_associations > 0
        with pytest.raises(ValueError):
            server.set_limits(dtls.ServerLimits(handshake_timeout=0.0))
        with pytest.raises(TypeError):
            server.set_limits((1, 2, 3.0, 4.0))  # type: ignore[arg-type]
        assert server.limits == limits


def test_accept_timeouts_cancellation_and_close(identity: dtls.TlsCertificate) -> None:
    server = dtls.DtlsServer(("127.0.0.1", 0), identity)
    with pytest.raises(dtls.WouldBlock):
        server.accept(timeout=0)
    with pytest.raises(dtls.TimedOut):
        server.accept(timeout=0.1)
    cancellable = dtls.Cancellable()
    timer = threading.Timer(0.1, cancellable.cancel)
    timer.start()
    with pytest.raises(dtls.Cancelled):
        server.accept(cancellable=cancellable)
    timer.join()

    async def cancelled_task() -> None:
        task = asyncio.ensure_future(server.accept_async())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_task())
    # Closing from another thread stops a blocked accept.
    closer = threading.Timer(0.1, server.close)
    closer.start()
    with pytest.raises(dtls.Closed):
        server.accept()
    closer.join()
    with pytest.raises(dtls.Closed):
        server.accept(timeout=0)
    with pytest.raises(dtls.Closed):
        server.get_stats()
    server.close()  # closing again does nothing


class Interrupted(Exception):
    pass


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted


def _interrupted_after(delay: float, call: typing.Callable[[], object]) -> None:
    """Runs ``call`` on the main thread and sends it SIGUSR1 after ``delay``: the handler's
    exception must stop the blocked call."""
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread().ident == main, "signal handlers run on the main thread"
    previous = signal.signal(signal.SIGUSR1, _raise_interrupted)
    timer = threading.Timer(delay, signal.pthread_kill, (main, signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(Interrupted):
            call()
    finally:
        timer.join()
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="no pthread_kill on this platform")
def test_a_signal_handlers_exception_stops_a_blocked_accept_or_receive(
    identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        _interrupted_after(0.2, server.accept)
        with _client_socket(server) as sock:
            client = client_for(sock, database)
            handshaking = Peer(lambda: client.handshake(timeout=WAIT))
            conn = server.accept(timeout=WAIT)
            conn.handshake(timeout=WAIT)
            handshaking.result()
            _interrupted_after(0.2, conn.receive)
            client.close()
            assert conn.receive(timeout=WAIT) == b"", "the connection works after the signal"


def test_accept_async_serves_a_client(identity: dtls.TlsCertificate, database: crypto.X509Store) -> None:
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:

        async def main() -> bytes:
            loop = asyncio.get_running_loop()
            with _client_socket(server) as sock:
                client = client_for(sock, database)
                sending = loop.run_in_executor(None, lambda: (client.send(b"async"), client.close()))
                conn = await server.accept_async(timeout=WAIT)
                got = await conn.receive_messages_async(1, timeout=WAIT)
                await asyncio.wait_for(sending, WAIT)
                await conn.close_async()
                return got[0]

        assert asyncio.run(main()) == b"async"


# --- the interaction --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encrypted_key(pki: typing.Any) -> bytes:
    """The server key as encrypted PKCS#8 (cryptography's best: PBES2 with AES-256-CBC),
    password "s3cret"."""
    key = serialization.load_pem_private_key(pki.key_pem, None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"s3cret")
    )


class Answers(dtls.TlsInteraction):
    """Answers password questions from a list (then UNHANDLED); remembers what was asked."""

    def __init__(self, *answers: bytes) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, dtls.TlsPasswordFlags]] = []

    def ask_password(
        self, password: dtls.TlsPassword, cancellable: dtls.Cancellable | None = None
    ) -> dtls.TlsInteractionResult:
        self.asked.append((password.description, password.flags))
        if not self.answers:
            return dtls.TlsInteractionResult.UNHANDLED
        password.set_value(self.answers.pop(0))
        return dtls.TlsInteractionResult.HANDLED


def _unconnected_server(identity: dtls.TlsCertificate) -> tuple[socket.socket, dtls.DtlsServerConnection]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock, dtls.DtlsServerConnection.new(sock, identity, ("127.0.0.1", 9))


def test_an_encrypted_key_asks_the_interaction(
    identity: dtls.TlsCertificate, encrypted_key: bytes, pki: typing.Any
) -> None:
    sock, conn = _unconnected_server(identity)
    with sock:
        with pytest.raises(dtls.BadCertificatePassword) as no_interaction:
            conn.set_certificate_pem(pki.cert_pem, encrypted_key)
        assert no_interaction.value.code == dtls.TlsErrorEnum.BAD_CERTIFICATE_PASSWORD
        assert "encrypted" in str(no_interaction.value)

        answers = Answers(b"wrong", b"s3cret")
        conn.interaction = answers
        assert conn.get_interaction() is answers
        conn.set_certificate_pem(pki.cert_pem, encrypted_key)
        assert [flags for _, flags in answers.asked] == [dtls.TlsPasswordFlags.NONE, dtls.TlsPasswordFlags.RETRY]
        assert all(description for description, _ in answers.asked)
        assert conn.certificate == identity

        stubborn = Answers(b"a", b"b", b"c", b"d")
        conn.set_interaction(stubborn)
        with pytest.raises(dtls.BadCertificatePassword):
            conn.set_certificate_pem(pki.cert_pem, encrypted_key)
        assert len(stubborn.asked) == 3 and stubborn.asked[2][1] & dtls.TlsPasswordFlags.FINAL_TRY

        conn.set_interaction(dtls.TlsInteraction())  # the base class leaves it UNHANDLED
        with pytest.raises(dtls.BadCertificatePassword):
            conn.set_certificate_pem(pki.cert_pem, encrypted_key)
        with pytest.raises(TypeError):
            conn.set_interaction(object())  # type: ignore[arg-type]


def test_an_interactions_exception_or_failure_reaches_the_caller(
    identity: dtls.TlsCertificate, encrypted_key: bytes, pki: typing.Any
) -> None:
    class Broken(dtls.TlsInteraction):
        def do_ask_password(
            self, password: dtls.TlsPassword, cancellable: dtls.Cancellable | None = None
        ) -> dtls.TlsInteractionResult:
            raise KeyError("no keyring")

    class Refusing(dtls.TlsInteraction):
        def ask_password(
            self, password: dtls.TlsPassword, cancellable: dtls.Cancellable | None = None
        ) -> dtls.TlsInteractionResult:
            return dtls.TlsInteractionResult.FAILED

    sock, conn = _unconnected_server(identity)
    with sock:
        conn.set_interaction(Broken())
        with pytest.raises(KeyError, match="no keyring"):
            conn.set_certificate_pem(pki.cert_pem, encrypted_key)
        conn.set_interaction(Refusing())
        with pytest.raises(dtls.Cancelled):
            conn.set_certificate_pem(pki.cert_pem, encrypted_key)


def test_a_server_with_an_encrypted_key(
    identity: dtls.TlsCertificate, database: crypto.X509Store, encrypted_key: bytes, pki: typing.Any, leafs: typing.Any
) -> None:
    with dtls.DtlsServer(("127.0.0.1", 0), leafs.wrong_name) as server:
        server.set_interaction(Answers(b"s3cret"))
        server.set_certificate_pem(pki.cert_pem.decode(), encrypted_key)
        assert server.certificate == identity
        peer = Peer(lambda: echo(server.accept(timeout=WAIT))())
        with _client_socket(server) as sock, client_for(sock, database) as client:
            client.handshake(timeout=WAIT)
            assert client.peer_certificate == identity, "the key opened through the interaction signs"
            assert _exchange(client, b"signed") == b"signed"
        assert peer.result() == [b"signed"]


def test_tls_password_accessors() -> None:
    password = dtls.TlsPassword.new(dtls.TlsPasswordFlags.RETRY, "the key")
    assert password.get_value() is None and password.description == "the key"
    password.set_value("pässword")
    assert password.get_value() == "pässword".encode()
    password.flags = dtls.TlsPasswordFlags.FINAL_TRY
    password.warning = "last try"
    assert password.get_flags() is dtls.TlsPasswordFlags.FINAL_TRY and password.get_warning() == "last try"


# --- SRTP, keying material, tls-unique ----------------------------------------------------------


def test_srtp_and_keying_material_agree_on_both_ends(identity: dtls.TlsCertificate, database: crypto.X509Store) -> None:
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        server.set_srtp_profiles(["SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_SHA1_80"])

        def serve() -> tuple[str | None, bytes, bytes, bytes]:
            conn = server.accept(timeout=WAIT)
            conn.handshake(timeout=WAIT)
            result = (
                conn.selected_srtp_profile,
                conn.export_keying_material("EXTRACTOR-dtls_srtp", 60),
                conn.export_keying_material(b"EXPORTER-test", 32, b"context"),
                conn.get_channel_binding_data(dtls.TlsChannelBindingType.UNIQUE),
            )
            assert conn.receive(timeout=WAIT) == b""
            conn.close()
            return result

        peer = Peer(serve)
        with _client_socket(server) as sock:
            client = client_for(sock, database)
            # tls-unique exists in DTLS 1.2 only (RFC 9266 §1).
            client.set_protocol_versions(dtls.TlsProtocolVersion.UNKNOWN, dtls.TlsProtocolVersion.DTLS_1_2)
            client.set_srtp_profiles("SRTP_AES128_CM_SHA1_80")
            with pytest.raises(dtls.TlsError):
                client.export_keying_material("EXTRACTOR-dtls_srtp", 60)
            client.handshake(timeout=WAIT)
            assert client.get_selected_srtp_profile() == "SRTP_AES128_CM_SHA1_80"
            srtp = client.export_keying_material("EXTRACTOR-dtls_srtp", 60)
            with_context = client.export_keying_material("EXPORTER-test", 32, b"context")
            unique = client.get_channel_binding_data(dtls.TlsChannelBindingType.UNIQUE)
            assert len(srtp) == 60 and len(with_context) == 32 and len(unique) == 12
            assert with_context != client.export_keying_material("EXPORTER-test", 32)
            client.close()
        assert peer.result() == ("SRTP_AES128_CM_SHA1_80", srtp, with_context, unique)


def test_bad_srtp_profiles_fail_at_once(identity: dtls.TlsCertificate) -> None:
    sock, conn = _unconnected_server(identity)
    with sock, dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        with pytest.raises(ValueError, match="SRTP_NO_SUCH_PROFILE"):
            conn.set_srtp_profiles("SRTP_NO_SUCH_PROFILE")
        with pytest.raises(ValueError):
            server.set_srtp_profiles(["SRTP_NO_SUCH_PROFILE"])
        conn.set_srtp_profiles(None)


def test_a_handshake_timeout(identity: dtls.TlsCertificate) -> None:
    # Nobody answers: the peer's socket is never read.
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        quiet.bind(("127.0.0.1", 0))
        sock.connect(quiet.getsockname())
        client = dtls.DtlsClientConnection.new(sock, "localhost")
        with pytest.raises(dtls.TimedOut):
            client.handshake(timeout=0.2)


# --- openssl s_client against a DtlsServer ------------------------------------------------------


def test_openssl_s_client_against_a_dtls_server(pki: typing.Any, identity: dtls.TlsCertificate) -> None:
    _need_openssl()
    with dtls.DtlsServer(("127.0.0.1", 0), identity) as server:
        server.advertised_protocols = ["echo/1"]
        port = server.local_address[1]
        proc = subprocess.Popen(
            [
                "openssl",
                "s_client",
                "-dtls1_2",
                "-connect",
                f"127.0.0.1:{port}",
                "-CAfile",
                str(pki.ca_path),
                "-verify_return_error",
                "-verify_hostname",
                "localhost",
                "-alpn",
                "echo/1",
                "-quiet",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            out = Output(typing.cast(typing.IO[bytes], proc.stdout))
            conn = server.accept(timeout=WAIT)
            conn.handshake(timeout=WAIT)
            assert conn.protocol_version is dtls.TlsProtocolVersion.DTLS_1_2
            assert conn.negotiated_protocol == "echo/1"
            assert proc.stdin is not None
            proc.stdin.write(b"hello from openssl\n")
            proc.stdin.flush()
            assert conn.receive(timeout=WAIT) == b"hello from openssl\n"
            conn.send(b"hello from ferrossl.dtls.DtlsServer\n")
            assert out.wait_for(b"hello from ferrossl.dtls.DtlsServer"), "s_client did not print our datagram"
            assert server.association_count == 1
            conn.close()
        finally:
            _stop(proc)


@pytest.mark.parametrize("require", [True, False], ids=["required", "not-required"])
def test_closing_the_server_ends_its_connections_associations(
    require: bool, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    server = dtls.DtlsServer(("127.0.0.1", 0), identity)
    server.require_close_notify = require
    with _client_socket(server) as sock:
        client = client_for(sock, database)
        handshaking = Peer(lambda: client.handshake(timeout=WAIT))
        conn = server.accept(timeout=WAIT)
        conn.handshake(timeout=WAIT)
        handshaking.result()
        server.close()
        if require:
            with pytest.raises(dtls.Eof):
                conn.receive(timeout=WAIT)
        else:
            assert conn.receive(timeout=WAIT) == b""
        conn.close()
