"""Every Context setter and getter, with the effect each has on a handshake where it has one,
and the features refused on purpose (docs/refused.md) answering with their documented error."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ferrossl import SSL, crypto
from tlshelp import client_context, handshake, memory_pair, pump, server_context

pytestmark = pytest.mark.timeout(60)


def test_protocol_version_bounds(pki):
    cctx, sctx = client_context(pki), server_context(pki)
    cctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    sctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    client, server = memory_pair(pki, cctx, sctx)
    handshake(client, server)
    assert client.get_protocol_version() == SSL.TLS1_2_VERSION
    assert server.get_protocol_version_name() == "TLSv1.2"
    for refused in (SSL.TLS1_VERSION, SSL.TLS1_1_VERSION):
        with pytest.raises(SSL.Error):
            SSL.Context(SSL.TLS_METHOD).set_min_proto_version(refused)


def test_verify_settings_round_trip(pki):
    ctx = SSL.Context(SSL.TLS_METHOD)
    assert ctx.get_verify_mode() == SSL.VERIFY_NONE
    assert ctx.get_verify_callback() is None

    def callback(conn, cert, errnum, depth, ok):
        return ok

    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, callback)
    assert ctx.get_verify_mode() == SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT
    assert ctx.get_verify_callback() is callback
    ctx.set_verify_depth(3)
    assert ctx.get_verify_depth() == 3


def test_default_verify_paths_do_not_trust_the_test_ca(pki):
    cctx = SSL.Context(SSL.TLS_METHOD)
    cctx.set_default_verify_paths()
    cctx.set_verify(SSL.VERIFY_PEER)
    client, server = memory_pair(pki, cctx)
    with pytest.raises(SSL.Error):
        handshake(client, server)


def test_identity_from_objects_and_key_check(pki):
    cert = crypto.load_certificate(crypto.FILETYPE_PEM, pki.cert_pem)
    ca = crypto.load_certificate(crypto.FILETYPE_PEM, pki.ca_pem)
    key = crypto.load_privatekey(crypto.FILETYPE_PEM, pki.key_pem)
    sctx = SSL.Context(SSL.TLS_METHOD)
    sctx.use_certificate(cert)
    sctx.add_extra_chain_cert(ca)
    sctx.use_privatekey(key)
    sctx.check_privatekey()
    client, server = memory_pair(pki, sctx=sctx)
    handshake(client, server)
    assert [c.get_subject().CN for c in client.get_peer_cert_chain()] == ["localhost", "ferrossl python test CA"]

    other = crypto.PKey()
    other.generate_key(crypto.TYPE_EC, 256)
    mismatched = SSL.Context(SSL.TLS_METHOD)
    mismatched.use_certificate(cert)
    mismatched.use_privatekey(other)
    with pytest.raises(SSL.Error):
        mismatched.check_privatekey()


def test_passwd_cb_decrypts_the_key(pki, tmp_path):
    key = crypto.load_privatekey(crypto.FILETYPE_PEM, pki.key_pem)
    path = tmp_path / "enc.pem"
    path.write_bytes(crypto.dump_privatekey(crypto.FILETYPE_PEM, key, "aes-256-cbc", b"s3cret"))
    seen = []
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_passwd_cb(lambda maxlen, verify, data: seen.append(data) or b"s3cret", "userdata")
    ctx.use_privatekey_file(str(path))
    assert seen == ["userdata"]


def test_session_cache_timeout_and_id(pki):
    ctx = server_context(pki)
    assert ctx.get_session_cache_mode() == SSL.SESS_CACHE_SERVER
    assert ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF) == SSL.SESS_CACHE_SERVER
    assert ctx.get_session_cache_mode() == SSL.SESS_CACHE_OFF
    ctx.set_timeout(1234)
    assert ctx.get_timeout() == 1234
    ctx.set_session_id(b"ferrossl-tests")
    with pytest.raises(SSL.Error):
        ctx.set_session_id(b"x" * 33)


def test_session_objects(pki):
    cctx, sctx = client_context(pki), server_context(pki)
    client, server = memory_pair(pki, cctx, sctx)
    assert client.get_session() is None
    handshake(client, server)
    server.send(b"ticket")
    pump(server, client)
    client.recv(10)
    session = client.get_session()
    assert isinstance(session, SSL.Session)
    # A Session() of one's own is empty: offering it gives a full handshake.
    client2, server2 = memory_pair(pki, cctx, sctx)
    client2.set_session(SSL.Session())
    handshake(client2, server2)
    assert not client2.session_reused()
    with pytest.raises(ValueError):
        memory_pair(pki)[0].set_session(session)  # another context


def test_cipher_lists(pki):
    cctx, sctx = client_context(pki), server_context(pki)
    cctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    cctx.set_cipher_list(b"ECDHE-ECDSA-CHACHA20-POLY1305")
    client, server = memory_pair(pki, cctx, sctx)
    assert "ECDHE-ECDSA-CHACHA20-POLY1305" in client.get_cipher_list()
    handshake(client, server)
    assert client.get_cipher_name() == "ECDHE-ECDSA-CHACHA20-POLY1305"
    assert client.get_cipher_version() == "TLSv1.2"
    assert client.get_cipher_bits() == 256

    cctx = client_context(pki)
    cctx.set_tls13_ciphersuites(b"TLS_AES_128_GCM_SHA256")
    client, server = memory_pair(pki, cctx, sctx)
    handshake(client, server)
    assert client.get_cipher_name() == "TLS_AES_128_GCM_SHA256"
    assert client.get_cipher_bits() == 128
    with pytest.raises(SSL.Error):
        cctx.set_cipher_list(b"AES128-SHA")  # CBC only: refused on purpose


def test_tmp_ecdh_picks_the_group(pki):
    sctx = server_context(pki)
    sctx.set_tmp_ecdh(ec.SECP384R1())
    client, server = memory_pair(pki, sctx=sctx)
    handshake(client, server)
    assert server.get_group_name() == "secp384r1"
    with pytest.raises(SSL.Error):
        sctx.set_tmp_ecdh(ec.SECP256K1())
    with pytest.warns(DeprecationWarning):
        sctx.set_tmp_ecdh(crypto.get_elliptic_curve("prime256v1"))


def test_refused_legacy_features_answer_as_documented(pki, tmp_path):
    ctx = SSL.Context(SSL.TLS_METHOD)
    dh = tmp_path / "dh.pem"
    dh.write_bytes(b"")
    with pytest.raises(SSL.Error, match="not supported"):
        ctx.load_tmp_dh(str(dh))
    with pytest.raises(SSL.Error, match="not supported"):
        ctx.clear_mode(SSL.MODE_RELEASE_BUFFERS)
    for method in (SSL.SSLv2_METHOD, SSL.SSLv3_METHOD, SSL.TLSv1_METHOD, SSL.TLSv1_1_METHOD):
        with pytest.raises(SSL.Error):
            SSL.Context(method)
    client, server = memory_pair(pki)
    assert client.get_finished() is None and client.get_peer_finished() is None
    handshake(client, server)
    assert client.renegotiate() is False
    assert client.renegotiate_pending() is False
    assert client.total_renegotiations() == 0
    with pytest.raises(SSL.Error, match="Finished"):
        client.get_finished()
    with pytest.raises(SSL.Error, match="Finished"):
        client.get_peer_finished()
    assert client.master_key() is None  # TLS 1.3 has no master secret


def test_options_and_modes():
    ctx = SSL.Context(SSL.TLS_METHOD)
    with_ticket = ctx.set_options(SSL.OP_NO_TICKET)
    assert with_ticket & SSL.OP_NO_TICKET
    assert not ctx.clear_options(SSL.OP_NO_TICKET) & SSL.OP_NO_TICKET
    assert ctx.set_mode(SSL.MODE_RELEASE_BUFFERS) & SSL.MODE_RELEASE_BUFFERS


def test_app_data_and_cert_store(pki):
    ctx = SSL.Context(SSL.TLS_METHOD)
    assert ctx.get_app_data() is None
    marker = object()
    ctx.set_app_data(marker)
    assert ctx.get_app_data() is marker
    store = ctx.get_cert_store()
    store.add_cert(crypto.load_certificate(crypto.FILETYPE_PEM, pki.ca_pem))
    ctx.set_verify(SSL.VERIFY_PEER)
    client, server = memory_pair(pki, cctx=ctx)
    handshake(client, server)
    assert client.get_verified_chain()[-1].get_subject().CN == "ferrossl python test CA"


def test_client_ca_lists(pki):
    ca = crypto.load_certificate(crypto.FILETYPE_PEM, pki.ca_pem)
    setters = [
        lambda ctx: ctx.set_client_ca_list([ca.get_subject()]),
        lambda ctx: ctx.add_client_ca(ca),
        lambda ctx: ctx.load_client_ca(bytes(pki.ca_path)),
    ]
    for setter in setters:
        sctx = server_context(pki)
        sctx.set_verify(SSL.VERIFY_PEER)
        setter(sctx)
        client, server = memory_pair(pki, sctx=sctx)
        assert [n.CN for n in server.get_client_ca_list()] == ["ferrossl python test CA"]
        handshake(client, server)  # VERIFY_PEER alone lets a client without certificate in
        assert [n.CN for n in client.get_client_ca_list()] == ["ferrossl python test CA"]
        names = client.get_client_ca_list(as_cryptography=True)
        assert names[0].rfc4514_string() == "CN=ferrossl python test CA"


def test_ocsp_stapling(pki):
    sctx, cctx = server_context(pki), client_context(pki)
    seen = []
    sctx.set_ocsp_server_callback(lambda conn, data: b"ocsp-response:" + data, b"server")
    cctx.set_ocsp_client_callback(lambda conn, resp, data: seen.append((resp, data)) or True, b"client")
    client, server = memory_pair(pki, cctx, sctx)
    client.request_ocsp()
    handshake(client, server)
    assert seen == [(b"ocsp-response:server", b"client")]


def test_dtls_cookie_callbacks_and_timers(pki):
    sctx = SSL.Context(SSL.DTLS_METHOD)
    sctx.use_certificate_chain_file(str(pki.cert_path))
    sctx.use_privatekey_file(str(pki.key_path))
    sctx.set_options(SSL.OP_COOKIE_EXCHANGE)
    made, checked = [], []
    sctx.set_cookie_generate_callback(lambda conn: made.append(conn) or b"cookie!")
    sctx.set_cookie_verify_callback(lambda conn, cookie: checked.append(cookie) or cookie == b"cookie!")
    cctx = SSL.Context(SSL.DTLS_METHOD)
    client, server = memory_pair(pki, cctx, sctx)
    assert client.DTLSv1_get_timeout() is None
    with pytest.raises(SSL.WantReadError):
        client.do_handshake()
    assert client.DTLSv1_get_timeout() > 0
    assert client.DTLSv1_handle_timeout() is False  # the timer has not fired yet
    pump(client, server)
    with pytest.raises(SSL.WantReadError):
        server.DTLSv1_listen()  # answers with a HelloVerifyRequest
    for _ in range(10):
        for a, b in ((client, server), (server, client)):
            try:
                a.do_handshake()
            except SSL.WantReadError:
                pass
            pump(a, b)
    assert server.get_state_string() == b"SSL negotiation finished successfully"
    assert made and checked == [b"cookie!"]
    client.set_ciphertext_mtu(600)
    assert 0 < client.get_cleartext_mtu() < 600
