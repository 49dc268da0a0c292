"""ferrossl.dtls (GIO's DtlsConnection) over real UDP sockets on 127.0.0.1 and ::1: the
exchange, every setting and result, certificate problems and the accept-certificate decision,
close and shutdown rules, timeouts and cancellation, asyncio, and `openssl s_server`/
`s_client -dtls1_2` as peers."""

from __future__ import annotations

import asyncio
import datetime
import errno
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import typing

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ferrossl import crypto, dtls

WAIT = 10.0
Flags = dtls.TlsCertificateFlags


# --- PKI ------------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(ca: x509.Certificate, ca_key: typing.Any, dns: str, days: tuple[int, int]) -> dtls.TlsCertificate:
    """A leaf for ``dns`` signed by ``ca``, valid from ``days[0]`` to ``days[1]`` from now."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return dtls.TlsCertificate.new_from_pem(pem)


class Leafs(typing.NamedTuple):
    expired: dtls.TlsCertificate
    wrong_name: dtls.TlsCertificate
    own_ca: crypto.X509Store
    other_ca: crypto.X509Store


@pytest.fixture(scope="module")
def leafs(pki: typing.Any) -> Leafs:
    """Problem certificates from a CA of this module (``own_ca`` trusts it), and a store of an
    unrelated CA."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def ca(cn: str) -> tuple[x509.Certificate, typing.Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=3))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cert, key

    own, own_key = ca("ferrossl dtls test CA")
    other, _ = ca("ferrossl dtls unrelated CA")
    return Leafs(
        _issue(own, own_key, "localhost", (-2, -1)),
        _issue(own, own_key, "other.example", (-1, 30)),
        store_of(crypto.X509.from_cryptography(own)),
        store_of(crypto.X509.from_cryptography(other)),
    )


def store_of(*certs: crypto.X509) -> crypto.X509Store:
    store = crypto.X509Store()
    for c in certs:
        store.add_cert(c)
    return store


@pytest.fixture(scope="module")
def identity(pki: typing.Any) -> dtls.TlsCertificate:
    return dtls.TlsCertificate.new_from_files(pki.cert_path, pki.key_path)


@pytest.fixture(scope="module")
def database(pki: typing.Any) -> crypto.X509Store:
    return store_of(crypto.load_certificate(crypto.FILETYPE_PEM, pki.ca_pem))


# --- sockets and threads --------------------------------------------------------------------


def _loopback(family: socket.AddressFamily) -> str:
    return "127.0.0.1" if family == socket.AF_INET else "::1"


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


FAMILIES = [
    pytest.param(socket.AF_INET, id="ipv4"),
    pytest.param(
        socket.AF_INET6,
        id="ipv6",
        marks=pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback (::1) on this machine"),
    ),
]


class Sockets(typing.NamedTuple):
    client: socket.socket
    server: socket.socket


@pytest.fixture
def sockets(request: pytest.FixtureRequest) -> typing.Iterator[Sockets]:
    """Two UDP sockets on loopback connected to each other (family from ``family`` param)."""
    family = getattr(request, "param", socket.AF_INET)
    host = _loopback(family)
    c = socket.socket(family, socket.SOCK_DGRAM)
    s = socket.socket(family, socket.SOCK_DGRAM)
    c.bind((host, 0))
    s.bind((host, 0))
    c.connect(s.getsockname())
    s.connect(c.getsockname())
    yield Sockets(c, s)
    c.close()
    s.close()


class Peer(threading.Thread):
    """Runs ``fn`` on a thread; ``result()`` joins (bounded) and returns or re-raises."""

    def __init__(self, fn: typing.Callable[[], typing.Any]) -> None:
        super().__init__(daemon=True)
        self._fn = fn
        self._value: typing.Any = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            self._error = e

    def result(self, timeout: float = WAIT) -> typing.Any:
        self.join(timeout)
        assert not self.is_alive(), "the peer thread did not finish in time"
        if self._error is not None:
            raise self._error
        return self._value


def client_for(
    sock: socket.socket, database: crypto.X509Store | None, name: str = "localhost"
) -> dtls.DtlsClientConnection:
    client = dtls.DtlsClientConnection.new(sock, name)
    client.set_database(database)
    return client


def echo(server: dtls.DtlsServerConnection) -> typing.Callable[[], list[bytes]]:
    """Handshakes, echoes datagrams until the end, closes; returns what it received."""

    def run() -> list[bytes]:
        server.handshake()
        got = []
        while True:
            d = server.receive(timeout=WAIT)
            if not d:
                break
            got.append(d)
            server.send(d)
        server.close()
        return got

    return run


# --- the exchange ---------------------------------------------------------------------------


@pytest.mark.parametrize("sockets", FAMILIES, indirect=True)
def test_exchange_results_and_close(
    sockets: Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    server = dtls.DtlsServerConnection.new(sockets.server, identity)
    server.set_advertised_protocols(["webrtc", "c-webrtc"])
    peer = Peer(lambda: (echo(server)(), server))
    client = client_for(sockets.client, database)
    client.advertised_protocols = ["c-webrtc"]
    assert client.handshake() is True
    client.handshake()  # a second call does nothing
    assert client.protocol_version is dtls.TlsProtocolVersion.DTLS_1_3
    assert client.ciphersuite_name is not None and client.ciphersuite_name.startswith(("TLS_AES_", "TLS_CHACHA20_"))
    assert client.negotiated_protocol == "c-webrtc"
    assert client.peer_certificate == identity
    assert client.peer_certificate_errors == Flags.NO_FLAGS
    exporter = client.get_channel_binding_data(dtls.TlsChannelBindingType.EXPORTER)
    end_point = client.get_channel_binding_data(dtls.TlsChannelBindingType.SERVER_END_POINT)
    assert len(exporter) == 32 and len(end_point) == 32
    assert client.send_messages([b"one", bytearray(b"two"), b"three"], timeout=WAIT) == 3
    got: list[bytes] = []
    for _ in range(3):  # one call returns what has arrived, at least one datagram
        got += client.receive_messages(3, timeout=WAIT)
        if len(got) == 3:
            break
    assert got == [b"one", b"two", b"three"]
    assert client.send(b"single") == 6
    assert client.receive(timeout=WAIT) == b"single"
    assert client.close() is True
    assert client.close() is True, "closing twice is not an error"
    received, server = peer.result()
    assert received == [b"one", b"two", b"three", b"single"]
    assert server.get_channel_binding_data(dtls.TlsChannelBindingType.EXPORTER) == exporter
    assert server.get_channel_binding_data(dtls.TlsChannelBindingType.SERVER_END_POINT) == end_point
    assert server.negotiated_protocol == "c-webrtc"
    assert server.peer_certificate is None, "no client certificate was asked for"
    # tls-unique is not defined for DTLS 1.3 (RFC 9266 §1); DTLS 1.2's is tested with a
    # DtlsServer (test_dtls_server.py).
    for end in (client, server):
        with pytest.raises(dtls.ChannelBindingError):
            end.get_channel_binding_data(dtls.TlsChannelBindingType.UNIQUE)
    for call in (lambda: client.send(b"late"), lambda: client.receive(), lambda: client.handshake()):
        with pytest.raises(dtls.Closed) as e:
            call()
        assert e.value.code == dtls.IOErrorEnum.CLOSED and e.value.domain == "g-io-error-quark"
    assert client.protocol_version is dtls.TlsProtocolVersion.UNKNOWN
    sockets.client.getsockname()  # the base socket stays open
    assert sockets.client.fileno() != -1 and client.base_socket is sockets.client


@pytest.mark.parametrize("family", [p.values[0] for p in FAMILIES], ids=["ipv4", "ipv6"])
def test_server_on_an_unconnected_socket_talks_to_its_peer_only(
    family: socket.AddressFamily, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    if family == socket.AF_INET6 and not _ipv6_available():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    host = _loopback(family)
    with (
        socket.socket(family, socket.SOCK_DGRAM) as s,
        socket.socket(family, socket.SOCK_DGRAM) as c,
        socket.socket(family, socket.SOCK_DGRAM) as stranger,
    ):
        s.bind((host, 0))
        c.bind((host, 0))
        c.connect(s.getsockname())
        stranger.sendto(b"noise", s.getsockname())
        server = dtls.DtlsServerConnection.new(s, identity, peer_address=c.getsockname()[:2])
        peer = Peer(echo(server))
        client = client_for(c, database)
        client.send(b"via sendto")
        assert client.receive(timeout=WAIT) == b"via sendto"
        client.close()
        assert peer.result() == [b"via sendto"]


def test_settings_and_results_before_the_handshake(
    sockets: Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    client = dtls.DtlsClientConnection.new(sockets.client, "localhost")
    server = dtls.DtlsServerConnection.new(sockets.server, identity)
    assert client.server_identity == "localhost" and client.get_server_identity() == "localhost"
    assert client.base_socket is sockets.client and server.get_base_socket() is sockets.server
    assert client.protocol_version is dtls.TlsProtocolVersion.UNKNOWN
    assert client.ciphersuite_name is None and client.negotiated_protocol is None
    assert client.peer_certificate is None and client.peer_certificate_errors == Flags.NO_FLAGS
    assert client.require_close_notify is True
    client.require_close_notify = False
    assert client.get_require_close_notify() is False
    assert client.validation_flags == Flags.VALIDATE_ALL
    client.validation_flags = Flags.UNKNOWN_CA | Flags.EXPIRED
    assert client.get_validation_flags() == Flags.UNKNOWN_CA | Flags.EXPIRED
    assert server.authentication_mode is dtls.TlsAuthenticationMode.NONE
    server.authentication_mode = dtls.TlsAuthenticationMode.REQUESTED
    assert server.get_authentication_mode() is dtls.TlsAuthenticationMode.REQUESTED
    assert client.certificate is None and server.certificate is identity
    client.certificate = identity
    assert client.get_certificate() is identity
    assert isinstance(client.database, crypto.X509Store), "the system store by default"
    client.database = database
    assert client.database is database
    client.set_database(None)
    assert client.get_database() is None
    assert client.advertised_protocols is None
    client.set_advertised_protocols(["h2", "http/1.1"])
    assert client.get_advertised_protocols() == ["h2", "http/1.1"]
    assert client.rehandshake_mode is dtls.TlsRehandshakeMode.SAFELY
    client.set_rehandshake_mode(dtls.TlsRehandshakeMode.NEVER)
    # GIO ignores the setting and answers SAFELY.
    assert client.get_rehandshake_mode() is dtls.TlsRehandshakeMode.SAFELY
    with pytest.raises(dtls.ChannelBindingError) as e:
        client.get_channel_binding_data(dtls.TlsChannelBindingType.EXPORTER)
    assert e.value.code == dtls.TlsChannelBindingError.INVALID_STATE
    with pytest.raises(TypeError):
        client.connect("notify", lambda *a: True)
    with pytest.raises(ValueError):
        client.receive(timeout=-1)


def test_constructors_check_their_arguments(identity: dtls.TlsCertificate, pki: typing.Any) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
    ):
        with pytest.raises(ValueError, match="not connected"):
            dtls.DtlsClientConnection.new(udp, "localhost")
        with pytest.raises(ValueError, match="SOCK_DGRAM"):
            dtls.DtlsServerConnection.new(tcp, identity, ("127.0.0.1", 9))
        no_key = dtls.TlsCertificate.new_from_file(pki.cert_path)
        assert no_key.pkey is None and no_key.private_key_pem is None
        with pytest.raises(ValueError, match="private key"):
            dtls.DtlsServerConnection.new(udp, no_key, ("127.0.0.1", 9))
        with pytest.raises(TypeError):
            dtls.DtlsServerConnection.new(udp, identity.x509, ("127.0.0.1", 9))  # type: ignore[arg-type]


def test_tls_certificate_views(identity: dtls.TlsCertificate, pki: typing.Any) -> None:
    assert identity.subject_name == "CN=localhost"
    assert identity.issuer_name == "CN=ferrossl python test CA"
    assert identity.not_valid_before < datetime.datetime.now(datetime.timezone.utc) < identity.not_valid_after
    assert identity.certificate_pem.encode() == pki.cert_pem
    assert identity.private_key is not None and identity.private_key_pem is not None
    again = dtls.TlsCertificate(identity.x509, identity.pkey)
    assert again.is_same(identity) and again == identity and hash(again) == hash(identity)
    assert dtls.TlsCertificate.new_from_pem(identity.certificate_pem + identity.private_key_pem).pkey is not None


# --- certificates ---------------------------------------------------------------------------


def _handshake_pair(
    sockets: Sockets,
    server_cert: dtls.TlsCertificate,
    database: crypto.X509Store | None,
    name: str = "localhost",
    configure: typing.Callable[[dtls.DtlsClientConnection], None] = lambda c: None,
) -> tuple[dtls.DtlsClientConnection, BaseException | None, BaseException | None]:
    """Handshakes both ends; returns the client and each end's exception (or None)."""
    server = dtls.DtlsServerConnection.new(sockets.server, server_cert)

    def serve() -> BaseException | None:
        try:
            server.handshake()
        except dtls.GioError as e:
            return e
        return None

    peer = Peer(serve)
    client = client_for(sockets.client, database, name)
    configure(client)
    client_error = None
    try:
        client.handshake()
    except BaseException as e:  # noqa: BLE001 - returned for the test to inspect
        client_error = e
    if client_error is None:
        client.close()
    return client, client_error, peer.result()


PROBLEMS = ["expired", "wrong-name", "unknown-ca", "no-database"]


def _problem(
    kind: str, leafs: Leafs, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> tuple[dtls.TlsCertificate, crypto.X509Store | None, Flags]:
    return {
        "expired": (leafs.expired, leafs.own_ca, Flags.EXPIRED),
        "wrong-name": (leafs.wrong_name, leafs.own_ca, Flags.BAD_IDENTITY),
        "unknown-ca": (identity, leafs.other_ca, Flags.UNKNOWN_CA),
        "no-database": (identity, None, Flags.UNKNOWN_CA),
    }[kind]


@pytest.mark.parametrize("kind", PROBLEMS)
def test_certificate_problems_raise_bad_certificate_with_gio_flags(
    kind: str, sockets: Sockets, leafs: Leafs, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    cert, db, flag = _problem(kind, leafs, identity, database)
    client, error, server_error = _handshake_pair(sockets, cert, db)
    assert isinstance(error, dtls.BadCertificate), error
    assert error.flags == flag and error.code == dtls.TlsErrorEnum.BAD_CERTIFICATE
    assert error.domain == "g-tls-error-quark"
    assert client.peer_certificate_errors == flag
    assert isinstance(server_error, dtls.TlsError), "the server sees the client's alert"


@pytest.mark.parametrize("answer", [True, False], ids=["accept", "refuse"])
def test_the_accept_certificate_handler_decides(
    answer: bool, sockets: Sockets, leafs: Leafs, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    calls: list[tuple[typing.Any, ...]] = []

    def handler(conn: dtls.DtlsConnection, cert: dtls.TlsCertificate, errors: Flags, tag: str) -> bool:
        calls.append((conn, cert, errors, tag))
        return answer

    holder: list[dtls.DtlsClientConnection] = []

    def configure(c: dtls.DtlsClientConnection) -> None:
        holder.append(c)
        c.connect("accept-certificate", handler, "tag")

    client, error, server_error = _handshake_pair(sockets, leafs.wrong_name, leafs.own_ca, configure=configure)
    assert calls == [(holder[0], leafs.wrong_name, Flags.BAD_IDENTITY, "tag")]
    assert client.peer_certificate_errors == Flags.BAD_IDENTITY
    if answer:
        assert error is None and server_error is None
        assert client.peer_certificate == leafs.wrong_name
    else:
        assert isinstance(error, dtls.BadCertificate) and error.flags == Flags.BAD_IDENTITY


def test_the_default_handler_runs_after_connected_ones_and_disconnect_works(
    sockets: Sockets, identity: dtls.TlsCertificate
) -> None:
    order: list[str] = []

    def answer(name: str, verdict: bool) -> typing.Callable[..., bool]:
        def handler(*args: object) -> bool:
            order.append(f"{name} {args[-1]!r}")
            return verdict

        return handler

    def configure(c: dtls.DtlsClientConnection) -> None:
        gone = c.connect("accept-certificate", answer("gone", True))
        c.disconnect(gone)
        c.connect("accept-certificate", answer("connected", False))
        c.set_accept_certificate_handler(answer("default", True))

    _, error, _ = _handshake_pair(sockets, identity, None, configure=configure)
    assert error is None
    assert order == [f"connected {Flags.UNKNOWN_CA!r}", f"default {Flags.UNKNOWN_CA!r}"]


def test_an_exception_in_the_handler_aborts_the_handshake_and_is_raised(
    sockets: Sockets, identity: dtls.TlsCertificate
) -> None:
    class Refused(Exception):
        pass

    def handler(cert: dtls.TlsCertificate, errors: Flags) -> bool:
        raise Refused(errors)

    _, error, server_error = _handshake_pair(
        sockets, identity, None, configure=lambda c: c.set_accept_certificate_handler(handler)
    )
    assert isinstance(error, Refused) and error.args == (Flags.UNKNOWN_CA,)
    assert isinstance(server_error, dtls.TlsError)


def test_the_connection_is_busy_inside_its_own_handler(sockets: Sockets, identity: dtls.TlsCertificate) -> None:
    def handler(conn: dtls.DtlsConnection, cert: dtls.TlsCertificate, errors: Flags) -> bool:
        return conn.get_ciphersuite_name() is None

    def configure(c: dtls.DtlsClientConnection) -> None:
        c.connect("accept-certificate", handler)

    _, error, _ = _handshake_pair(sockets, identity, None, configure=configure)
    assert isinstance(error, dtls.TlsError) and "busy" in str(error)


def test_validation_flags_decide_which_problems_count(sockets: Sockets, leafs: Leafs) -> None:
    def configure(c: dtls.DtlsClientConnection) -> None:
        c.validation_flags = Flags.VALIDATE_ALL & ~Flags.BAD_IDENTITY

    client, error, _ = _handshake_pair(sockets, leafs.wrong_name, leafs.own_ca, configure=configure)
    assert error is None
    assert client.peer_certificate_errors == Flags.NO_FLAGS


def test_client_certificates_requested_and_required(
    sockets: Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    server = dtls.DtlsServerConnection.new(sockets.server, identity)
    server.authentication_mode = dtls.TlsAuthenticationMode.REQUIRED
    server.database = database
    peer = Peer(lambda: (server.handshake(), server.peer_certificate, server.close()))
    client = client_for(sockets.client, database)
    client.certificate = identity
    client.handshake()
    _, seen, _ = peer.result()
    assert seen == identity
    client.close()


def test_a_missing_client_certificate_is_certificate_required(
    sockets: Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    server = dtls.DtlsServerConnection.new(sockets.server, identity)
    server.authentication_mode = dtls.TlsAuthenticationMode.REQUIRED
    peer = Peer(lambda: server.handshake())
    client = client_for(sockets.client, database)
    with pytest.raises(dtls.CertificateRequired) as required:
        client.handshake()
        # DTLS 1.3: the client's handshake ends with its Finished; the server's refusal
        # (RFC 8446 §4.4.2.4) reaches it at the next read.
        client.receive(timeout=WAIT)
    assert required.value.code == dtls.TlsErrorEnum.CERTIFICATE_REQUIRED
    with pytest.raises(dtls.BadCertificate) as e:
        peer.result()
    assert e.value.code == dtls.TlsErrorEnum.BAD_CERTIFICATE and e.value.flags == Flags.NO_FLAGS


# --- close, shutdown, close_notify ------------------------------------------------------------


def test_write_only_shutdown_sends_close_notify_and_keeps_reading(
    sockets: Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    server = dtls.DtlsServerConnection.new(sockets.server, identity)

    def serve() -> bytes:
        server.handshake()
        end = server.receive(timeout=WAIT)
        server.send(b"after your close_notify")
        server.close()
        return end

    peer = Peer(serve)
    client = client_for(sockets.client, database)
    client.handshake()
    assert client.shutdown(False, True) is True
    with pytest.raises(dtls.Closed):
        client.send(b"no more")
    assert client.receive(timeout=WAIT) == b"after your close_notify"
    assert peer.result() == b"", "the server read our close_notify as the end"
    assert client.receive(timeout=WAIT) == b"", "and then its close_notify"
    client.close()


def test_read_only_shutdown_refuses_receives_and_keeps_sending(
    sockets: Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    server = dtls.DtlsServerConnection.new(sockets.server, identity)
    peer = Peer(echo(server))
    client = client_for(sockets.client, database)
    client.handshake()
    client.shutdown(True, False)
    with pytest.raises(dtls.Closed):
        client.receive(timeout=0)
    client.send(b"still writing")
    client.shutdown(False, True)  # both directions are now shut: closed
    with pytest.raises(dtls.Closed):
        client.send(b"x")
    assert peer.result() == [b"still writing"]


@pytest.mark.parametrize("require", [True, False], ids=["required", "not-required"])
def test_require_close_notify_decides_on_a_vanished_peer(
    require: bool, sockets: Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    server = dtls.DtlsServerConnection.new(sockets.server, identity)
    peer = Peer(server.handshake)
    client = client_for(sockets.client, database)
    client.require_close_notify = require
    client.handshake()
    peer.result()
    sockets.server.close()  # gone without close_notify: its port is closed
    client.send(b"anyone there?")
    if require:
        with pytest.raises(dtls.Eof) as e:
            client.receive(timeout=WAIT)
        assert e.value.code == dtls.TlsErrorEnum.EOF
    else:
        assert client.receive(timeout=WAIT) == b""
    client.close()


# --- timeouts and cancellation ----------------------------------------------------------------


def test_timeouts_would_block_and_timed_out(
    sockets: Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    server = dtls.DtlsServerConnection.new(sockets.server, identity)
    release = threading.Event()
    peer = Peer(lambda: (server.handshake(), release.wait(WAIT), server.close()))
    client = client_for(sockets.client, database)
    client.handshake()
    with pytest.raises(dtls.WouldBlock) as e:
        client.receive_messages(4, timeout=0)
    assert isinstance(e.value, BlockingIOError) and e.value.code == dtls.IOErrorEnum.WOULD_BLOCK
    with pytest.raises(dtls.TimedOut) as t:
        client.receive(timeout=0.2)
    assert isinstance(t.value, TimeoutError) and t.value.code == dtls.IOErrorEnum.TIMED_OUT
    release.set()
    assert client.receive(timeout=WAIT) == b""
    peer.result()


def test_a_closed_base_socket_is_a_transport_error(sockets: Sockets) -> None:
    client = dtls.DtlsClientConnection.new(sockets.client, "localhost")
    sockets.client.close()
    with pytest.raises(dtls.TransportError) as e:
        client.handshake()
    assert e.value.errno == errno.EBADF and e.value.code == dtls.IOErrorEnum.FAILED
    with pytest.raises(ValueError):
        client.receive(timeout=float("nan"))


def _cancel_after(delay: float, cancellable: dtls.Cancellable) -> threading.Timer:
    timer = threading.Timer(delay, cancellable.cancel)
    timer.start()
    return timer


def test_cancelling_a_blocked_handshake_from_another_thread(sockets: Sockets) -> None:
    # Nobody answers: the server socket is never read.
    client = dtls.DtlsClientConnection.new(sockets.client, "localhost")
    cancellable = dtls.Cancellable()
    seen: list[dtls.Cancellable] = []
    cancellable.connect(seen.append)
    timer = _cancel_after(0.2, cancellable)
    start = time.monotonic()
    with pytest.raises(dtls.Cancelled) as e:
        client.handshake(cancellable)
    late = time.monotonic() - start - 0.2
    timer.join()
    print(f"cancelled handshake returned {late * 1000:.1f} ms after cancel()")
    assert late < 1.0
    assert e.value.code == dtls.IOErrorEnum.CANCELLED
    assert seen == [cancellable] and cancellable.is_cancelled()
    with pytest.raises(dtls.Cancelled):
        cancellable.set_error_if_cancelled()
    assert cancellable.connect(seen.append) == 0 and len(seen) == 2, "called at once when already cancelled"
    cancellable.reset()
    assert not cancellable.is_cancelled()
    cancellable.set_error_if_cancelled()


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="no pthread_kill on this platform")
def test_a_signal_handlers_exception_stops_a_blocked_call(sockets: Sockets) -> None:
    assert threading.current_thread() is threading.main_thread(), "signal handlers run on the main thread"

    class Interrupted(Exception):
        pass

    def on_signal(signum: int, frame: object) -> None:
        raise Interrupted

    client = dtls.DtlsClientConnection.new(sockets.client, "localhost")
    previous = signal.signal(signal.SIGUSR1, on_signal)
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(Interrupted):
            client.handshake()
    finally:
        timer.join()
        signal.signal(signal.SIGUSR1, previous)


def test_cancelling_a_blocked_receive(
    sockets: Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store
) -> None:
    server = dtls.DtlsServerConnection.new(sockets.server, identity)
    release = threading.Event()
    peer = Peer(lambda: (server.handshake(), release.wait(WAIT), server.close()))
    client = client_for(sockets.client, database)
    client.handshake()
    cancellable = dtls.Cancellable()
    timer = _cancel_after(0.1, cancellable)
    with pytest.raises(dtls.Cancelled):
        client.receive(cancellable=cancellable)
    timer.join()
    release.set()
    assert client.receive(timeout=WAIT) == b"", "the connection still works after a cancelled call"
    peer.result()


# --- asyncio --------------------------------------------------------------------------------


def test_async_variants(sockets: Sockets, identity: dtls.TlsCertificate, database: crypto.X509Store) -> None:
    server = dtls.DtlsServerConnection.new(sockets.server, identity)

    async def main() -> list[bytes]:
        peer = asyncio.get_running_loop().run_in_executor(None, echo(server))
        client = client_for(sockets.client, database)
        assert await client.handshake_async() is True
        assert await client.send_messages_async([b"a", b"b"], timeout=WAIT) == 2
        got = await client.receive_messages_async(2, timeout=WAIT)
        if len(got) < 2:
            got += await client.receive_messages_async(1, timeout=WAIT)
        assert got == [b"a", b"b"]
        assert await client.shutdown_async(False, True) is True
        assert await client.receive_messages_async(1, timeout=WAIT) == []
        assert await client.close_async() is True
        return await asyncio.wait_for(peer, WAIT)

    assert asyncio.run(main()) == [b"a", b"b"]


def test_cancelling_the_task_cancels_the_blocked_call(sockets: Sockets) -> None:
    client = dtls.DtlsClientConnection.new(sockets.client, "localhost")

    async def main() -> float:
        task = asyncio.ensure_future(client.handshake_async())
        await asyncio.sleep(0.2)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - start

    took = asyncio.run(main())
    print(f"task cancellation stopped the handshake in {took * 1000:.1f} ms")
    assert took < 1.0
    client.close()  # not busy: the call has stopped
    with pytest.raises(dtls.Closed):
        client.handshake()


def test_an_async_call_honours_its_cancellable(sockets: Sockets) -> None:
    client = dtls.DtlsClientConnection.new(sockets.client, "localhost")
    cancellable = dtls.Cancellable()

    async def main() -> None:
        asyncio.get_running_loop().call_later(0.1, cancellable.cancel)
        await client.handshake_async(cancellable)

    with pytest.raises(dtls.Cancelled):
        asyncio.run(main())


# --- real peers -----------------------------------------------------------------------------


def _need_openssl() -> None:
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is required under CI")
        pytest.skip("openssl is not installed")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Output(threading.Thread):
    """Collects a process's output; ``wait_for`` waits (bounded) for a piece of it."""

    def __init__(self, stream: typing.IO[bytes]) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self._data = b""
        self._changed = threading.Condition()
        self.start()

    def run(self) -> None:
        for chunk in iter(lambda: self._stream.read1(4096), b""):  # type: ignore[attr-defined]
            with self._changed:
                self._data += chunk
                self._changed.notify_all()

    def wait_for(self, needle: bytes, timeout: float = WAIT) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: needle in self._data, timeout)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(WAIT)


def test_client_against_openssl_s_server(pki: typing.Any, database: crypto.X509Store) -> None:
    _need_openssl()
    port = _free_udp_port()
    proc = subprocess.Popen(
        [
            "openssl",
            "s_server",
            "-dtls1_2",
            "-accept",
            f"127.0.0.1:{port}",
            "-cert",
            str(pki.cert_path),
            "-key",
            str(pki.key_path),
            "-alpn",
            "webrtc",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out = Output(typing.cast(typing.IO[bytes], proc.stdout))
        assert out.wait_for(b"ACCEPT"), "s_server did not start"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("127.0.0.1", port))
            with client_for(sock, database) as client:
                client.advertised_protocols = ["webrtc"]
                client.handshake()
                assert client.negotiated_protocol == "webrtc"
                assert client.protocol_version is dtls.TlsProtocolVersion.DTLS_1_2
                client.send(b"hello from ferrossl.dtls\n")
                assert out.wait_for(b"hello from ferrossl.dtls"), "s_server did not print our datagram"
                assert proc.stdin is not None
                proc.stdin.write(b"hello from openssl\n")
                proc.stdin.flush()
                assert client.receive(timeout=WAIT) == b"hello from openssl\n"
            with pytest.raises(dtls.Closed):
                client.send(b"after the with block")
    finally:
        _stop(proc)


def test_openssl_s_client_against_server(pki: typing.Any, identity: dtls.TlsCertificate) -> None:
    _need_openssl()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
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
                "-servername",
                "localhost",
                "-quiet",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            out = Output(typing.cast(typing.IO[bytes], proc.stdout))
            # A listening server learns its client from the first datagram (left queued).
            sock.settimeout(WAIT)
            _, client_address = sock.recvfrom(1, socket.MSG_PEEK)
            server = dtls.DtlsServerConnection.new(sock, identity, peer_address=client_address)
            server.handshake()
            assert server.protocol_version is dtls.TlsProtocolVersion.DTLS_1_2
            assert proc.stdin is not None
            proc.stdin.write(b"hello from openssl\n")
            proc.stdin.flush()
            assert server.receive(timeout=WAIT) == b"hello from openssl\n"
            server.send(b"hello from ferrossl.dtls\n")
            assert out.wait_for(b"hello from ferrossl.dtls"), "s_client did not print our datagram"
            server.close()
        finally:
            _stop(proc)
