"""Misuse never crashes the interpreter: wrong types, calls in the wrong state or on closed
connections, callbacks that raise (the exception comes back from the method that ran them),
and huge sizes all give Python exceptions."""

from __future__ import annotations

import os
import socket

import pytest

from ferrossl import SSL, crypto
from tlshelp import client_context, handshake, memory_pair, pump, server_context

pytestmark = pytest.mark.timeout(120)


class Boom(Exception):
    """Raised by the callbacks under test."""


def boom(*args):
    raise Boom("from a callback")


def test_error_hierarchy_and_arguments(pki):
    for cls in (SSL.WantReadError, SSL.WantWriteError, SSL.WantX509LookupError, SSL.ZeroReturnError, SSL.SysCallError):
        assert issubclass(cls, SSL.Error)
    assert not issubclass(crypto.Error, SSL.Error)
    assert issubclass(crypto.X509StoreContextError, Exception)
    untrusting = SSL.Context(SSL.TLS_METHOD)
    untrusting.set_verify(SSL.VERIFY_PEER)
    client, server = memory_pair(pki, untrusting)
    with pytest.raises(SSL.Error) as e:
        handshake(client, server)
    # pyOpenSSL's shape: a list of (library, function, reason) triples.
    assert isinstance(e.value.args[0], list) and len(e.value.args[0][0]) == 3


def _callback_setups(pki):
    """(name, context setup on (client, server), client connection setup)."""

    def alpn(c, s):
        c.set_alpn_protos([b"h2"])
        s.set_alpn_select_callback(boom)

    def ocsp_client(c, s):
        s.set_ocsp_server_callback(lambda conn, data: b"response")
        c.set_ocsp_client_callback(boom)

    return [
        ("verify", lambda c, s: c.set_verify(SSL.VERIFY_PEER, boom)),
        ("servername", lambda c, s: s.set_tlsext_servername_callback(boom)),
        ("alpn", alpn),
        ("info", lambda c, s: c.set_info_callback(boom)),
        ("keylog", lambda c, s: c.set_keylog_callback(boom)),
        ("ocsp server", lambda c, s: s.set_ocsp_server_callback(boom)),
        ("ocsp client", ocsp_client),
    ]


@pytest.mark.parametrize("index", range(7))
def test_callback_exceptions_come_back_from_the_calling_method(pki, index):
    name, setup = _callback_setups(pki)[index]
    cctx, sctx = client_context(pki), server_context(pki)
    setup(cctx, sctx)
    client, server = memory_pair(pki, cctx, sctx)
    client.set_tlsext_host_name(b"localhost")
    client.request_ocsp()
    with pytest.raises(Boom):
        handshake(client, server)


def test_passphrase_and_cookie_callbacks_that_raise(pki, tmp_path):
    key = crypto.load_privatekey(crypto.FILETYPE_PEM, pki.key_pem)
    path = tmp_path / "enc.pem"
    path.write_bytes(crypto.dump_privatekey(crypto.FILETYPE_PEM, key, "aes-256-cbc", b"pw"))
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_passwd_cb(boom)
    with pytest.raises(Boom):
        ctx.use_privatekey_file(str(path))
    with pytest.raises(Boom):
        crypto.load_privatekey(crypto.FILETYPE_PEM, path.read_bytes(), boom)

    sctx = SSL.Context(SSL.DTLS_METHOD)
    sctx.use_certificate_chain_file(str(pki.cert_path))
    sctx.use_privatekey_file(str(pki.key_path))
    sctx.set_options(SSL.OP_COOKIE_EXCHANGE)
    sctx.set_cookie_generate_callback(boom)
    sctx.set_cookie_verify_callback(boom)
    client, server = memory_pair(pki, SSL.Context(SSL.DTLS_METHOD), sctx)
    with pytest.raises(SSL.WantReadError):
        client.do_handshake()
    pump(client, server)
    with pytest.raises(Boom):
        server.do_handshake()


def test_callbacks_returning_the_wrong_type(pki):
    sctx = server_context(pki)
    sctx.set_alpn_select_callback(lambda conn, offered: "h2")  # str, not bytes
    cctx = client_context(pki)
    cctx.set_alpn_protos([b"h2"])
    with pytest.raises(TypeError):
        handshake(*memory_pair(pki, cctx, sctx))
    sctx = server_context(pki)
    sctx.set_ocsp_server_callback(lambda conn, data: 42)
    client, server = memory_pair(pki, sctx=sctx)
    client.request_ocsp()
    with pytest.raises(TypeError):
        handshake(client, server)


def test_wrong_argument_types():
    ctx = SSL.Context(SSL.TLS_METHOD)
    conn = SSL.Connection(ctx, None)
    calls = [
        lambda: SSL.Context(None),
        lambda: SSL.Connection(None),
        lambda: ctx.set_options("1"),
        lambda: ctx.clear_options(None),
        lambda: ctx.set_mode(1.5),
        lambda: ctx.set_timeout("10"),
        lambda: ctx.set_verify_depth(None),
        lambda: ctx.set_session_cache_mode("off"),
        lambda: ctx.set_session_id(7),
        lambda: ctx.set_cipher_list(7),
        lambda: ctx.set_tls13_ciphersuites("TLS_AES_128_GCM_SHA256"),
        lambda: ctx.set_tlsext_use_srtp("SRTP_AES128_CM_SHA1_80"),
        lambda: ctx.set_client_ca_list([b"CN=x"]),
        lambda: ctx.set_alpn_protos(["h2"]),
        lambda: ctx.set_passwd_cb("not callable"),
        lambda: ctx.set_ocsp_server_callback(None),
        lambda: ctx.set_ocsp_client_callback(None),
        lambda: ctx.set_tmp_ecdh("prime256v1"),
        lambda: ctx.use_privatekey("key"),
        lambda: ctx.use_certificate_file(3),
        lambda: ctx.use_privatekey_file(b"/x", filetype="pem"),
        lambda: ctx.load_verify_locations(5),
        lambda: conn.set_context("ctx"),
        lambda: conn.set_session("session"),
        lambda: conn.set_shutdown("both"),
        lambda: conn.set_verify(SSL.VERIFY_PEER, "no"),
        lambda: conn.send(12345),
        lambda: conn.send(b"x", flags="0"),
        lambda: conn.sendall(object()),
        lambda: conn.recv("ten"),
        lambda: conn.recv_into(b"read-only"),
        lambda: conn.bio_write(None),
        lambda: conn.use_certificate(object()),
        lambda: crypto.X509().set_serial_number("1"),
        lambda: crypto.X509().set_subject("CN=x"),
        lambda: crypto.X509().set_notBefore("20250101000000Z"),
        lambda: crypto.X509().gmtime_adj_notAfter(1.5),
        lambda: crypto.X509Name("CN=x"),
        lambda: crypto.PKey().generate_key("rsa", 2048),
        lambda: crypto.PKey().generate_key(crypto.TYPE_RSA, "2048"),
        lambda: crypto.X509Store().add_cert("cert"),
        lambda: crypto.dump_privatekey(crypto.FILETYPE_PEM, "key"),
        lambda: crypto.load_privatekey(crypto.FILETYPE_PEM, b"", passphrase=5),
    ]
    for call in calls:
        with pytest.raises((TypeError, ValueError)):
            call()


def test_bad_values(pki, tmp_path):
    ctx = SSL.Context(SSL.TLS_METHOD)
    with pytest.raises(ValueError):
        SSL.Context(0)
    with pytest.raises(ValueError):
        ctx.set_alpn_protos([])
    with pytest.raises(ValueError):
        ctx.set_alpn_protos([b"x" * 256])
    with pytest.raises(SSL.Error):
        ctx.set_cipher_list(b"NOT-A-CIPHER")
    with pytest.raises(SSL.Error):
        ctx.set_tls13_ciphersuites(b"NOT_A_SUITE")
    with pytest.raises(SSL.Error):
        ctx.set_tlsext_use_srtp(b"SRTP_NOPE")
    with pytest.raises(SSL.Error):
        ctx.use_privatekey_file("/dev/null")
    with pytest.raises(SSL.Error):
        ctx.load_verify_locations(str(tmp_path / "missing.pem"))
    with pytest.raises(SSL.Error):
        ctx.check_privatekey()  # neither key nor certificate
    (tmp_path / "junk.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(SSL.Error):
        ctx.use_certificate_chain_file(str(tmp_path / "junk.pem"))
    for bad in (b"", b"\x30\x03\x02\x01", b"garbage" * 100):
        with pytest.raises(crypto.Error):
            crypto.load_certificate(crypto.FILETYPE_ASN1, bad)
        with pytest.raises(crypto.Error):
            crypto.load_privatekey(crypto.FILETYPE_ASN1, bad)
    with pytest.raises(ValueError):
        crypto.load_certificate(99, pki.cert_pem)
    with pytest.raises(ValueError):
        crypto.dump_certificate(99, crypto.load_certificate(crypto.FILETYPE_PEM, pki.cert_pem))
    with pytest.raises(crypto.Error):
        crypto.dump_certificate(crypto.FILETYPE_PEM, crypto.X509())  # never signed
    with pytest.raises(ValueError):
        crypto.dump_privatekey(crypto.FILETYPE_PEM, crypto.load_privatekey(crypto.FILETYPE_PEM, pki.key_pem), "no-such-cipher", b"pw")


def test_calls_in_the_wrong_state(pki):
    ctx = SSL.Context(SSL.TLS_METHOD)
    conn = SSL.Connection(ctx, None)
    for call in (conn.do_handshake, lambda: conn.send(b"x"), lambda: conn.recv(1), conn.shutdown):
        with pytest.raises(SSL.Error):
            call()  # no role yet
    with pytest.raises(SSL.Error):
        conn.export_keying_material(b"EXPERIMENTAL-x", 16)  # no handshake yet
    with pytest.raises(SSL.Error):
        conn.get_cleartext_mtu()  # not DTLS
    with pytest.raises(SSL.Error):
        conn.DTLSv1_listen()
    with pytest.raises(SSL.Error):
        SSL.Connection(server_context(pki), None).set_ciphertext_mtu(1000)
    with pytest.raises(AttributeError):
        conn.fileno()  # memory mode has no socket to pass attributes to

    client, server = memory_pair(pki)
    handshake(client, server)
    with pytest.raises(SSL.Error):
        client.set_tlsext_host_name(b"late.example")
    with pytest.raises(SSL.Error):
        client.set_alpn_protos([b"h2"])
    client.shutdown()
    with pytest.raises(SSL.Error):
        client.send(b"after close_notify")
    pump(client, server)
    with pytest.raises(SSL.ZeroReturnError):
        server.recv(1)
    with pytest.raises(SSL.ZeroReturnError):
        server.recv(1)  # stays closed
    assert server.shutdown() is True


def test_closed_socket(pki):
    a, b = socket.socketpair()
    conn = SSL.Connection(client_context(pki), a)
    conn.set_connect_state()
    b.close()
    with pytest.raises(SSL.Error):
        conn.do_handshake()
    a.close()
    with pytest.raises(SSL.Error):
        conn.do_handshake()
    with pytest.raises(OSError):
        conn.sock_shutdown(socket.SHUT_RDWR)


def test_huge_sizes(pki):
    client, server = memory_pair(pki)
    handshake(client, server)
    for size in (2**31, 2**62, 2**63 - 1):
        with pytest.raises(SSL.WantReadError):
            client.recv(size)
        with pytest.raises(SSL.WantReadError):
            client.bio_read(size)
    for size in (2**64, -1):
        with pytest.raises((OverflowError, ValueError)):
            client.recv(size)
        with pytest.raises((OverflowError, ValueError)):
            client.bio_read(size)
    with pytest.raises(ValueError):
        client.export_keying_material(b"EXPERIMENTAL-x", 2**40)
    with pytest.raises((OverflowError, ValueError)):
        client.export_keying_material(b"EXPERIMENTAL-x", -1)
    with pytest.raises(ValueError):
        client.send(_FakeHuge())


class _FakeHuge:
    """A buffer that claims more than 2**31 - 1 bytes: send refuses it before copying."""

    def __len__(self):
        return 2**31


def test_hundred_megabytes_in_memory_mode(pki):
    client, server = memory_pair(pki)
    handshake(client, server)
    data = b"\xa5" * (100 * 2**20)
    # Each send takes one record (partial writes, as pyOpenSSL sets them up).
    assert client.send(data) == 2**14
    client.sendall(memoryview(data)[2**14:])
    received = 0
    while received < len(data):
        pump(client, server)
        try:
            while True:
                chunk = server.recv(2**20)
                assert chunk == data[: len(chunk)]
                received += len(chunk)
        except SSL.WantReadError:
            pass
    assert received == len(data)


def test_want_write_from_a_full_socket(pki):
    a, b = socket.socketpair()
    for s in (a, b):
        s.setblocking(False)
    client = SSL.Connection(client_context(pki), a)
    client.set_connect_state()
    server = SSL.Connection(server_context(pki), b)
    server.set_accept_state()
    for _ in range(50):
        for conn in (client, server):
            try:
                conn.do_handshake()
            except SSL.WantReadError:
                pass
        if client.get_state_string() == server.get_state_string() == b"SSL negotiation finished successfully":
            break
    with pytest.raises(SSL.WantWriteError):
        for _ in range(10_000):  # the peer never reads: the socket buffer fills
            client.send(b"x" * 65536)
    a.close()
    b.close()


@pytest.mark.filterwarnings("ignore:str for cafile is no longer accepted")
def test_paths_that_cannot_be_encoded_raise_unicode_encode_error(pki, tmp_path):
    """As pyOpenSSL converts paths (os.fspath, then a strict encoding): a str with a lone
    surrogate or a surrogate escape raises UnicodeEncodeError, not a panic; bytes paths need
    not be UTF-8; other types raise os.fspath's TypeError. Found by fuzz/python_args.py."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    store = crypto.X509Store()
    calls = [
        lambda p: ctx.load_verify_locations(p),
        lambda p: ctx.load_verify_locations(None, p),
        lambda p: ctx.use_certificate_file(p),
        lambda p: ctx.use_certificate_chain_file(p),
        lambda p: ctx.use_privatekey_file(p),
        lambda p: ctx.load_client_ca(p),
        lambda p: store.load_locations(p),
        lambda p: store.load_locations(None, p),
    ]
    for call in calls:
        for unencodable in ("\ud800", "ca-\udce9.pem"):
            with pytest.raises(UnicodeEncodeError):
                call(unencodable)
        with pytest.raises(TypeError, match="expected str, bytes or os.PathLike object, not int"):
            call(12)
    not_utf8 = os.fsencode(tmp_path) + b"/ca-\xe9.pem"
    with open(not_utf8, "wb") as f:
        f.write(pki.ca_pem)
    store.load_locations(not_utf8)
    ctx.load_verify_locations(not_utf8)
    with pytest.raises(crypto.Error):
        store.load_locations(os.fsencode(tmp_path) + b"/missing-\xff.pem")


def test_dumping_an_empty_key_is_a_crypto_error():
    with pytest.raises(crypto.Error):
        crypto.dump_publickey(crypto.FILETYPE_PEM, crypto.PKey())
