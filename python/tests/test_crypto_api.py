"""The crypto objects: X509 read and built, X509Name, PKey, X509Store, X509StoreContext, the
load/dump functions and the curve list."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import ec

from ferrossl import SSL, crypto
from tlshelp import client_context, handshake, memory_pair, server_context

pytestmark = pytest.mark.timeout(60)


def test_loaded_certificate_fields(pki):
    cert = crypto.load_certificate(crypto.FILETYPE_PEM, pki.cert_pem)
    assert isinstance(cert, crypto.X509)
    assert cert.get_version() == 2
    assert cert.get_serial_number() == 2
    assert cert.get_subject().CN == "localhost"
    assert cert.get_issuer().commonName == "ferrossl python test CA"
    assert cert.get_notBefore() < cert.get_notAfter()
    assert not cert.has_expired()
    assert len(cert.digest("sha256").split(b":")) == 32
    with pytest.raises(ValueError):
        cert.digest("no-such-digest")
    assert cert.get_signature_algorithm() == b"ecdsa-with-SHA256"
    assert cert.get_extension_count() == 1
    assert isinstance(cert.subject_name_hash(), int)
    pub = cert.get_pubkey()
    assert (pub.type(), pub.bits()) == (crypto.TYPE_EC, 256)
    der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
    assert crypto.load_certificate(crypto.FILETYPE_ASN1, der) == cert
    assert crypto.dump_certificate(crypto.FILETYPE_PEM, cert) == pki.cert_pem
    assert b"Subject: CN=localhost" in crypto.dump_certificate(crypto.FILETYPE_TEXT, cert)
    assert cert.to_cryptography().serial_number == 2
    assert crypto.X509.from_cryptography(cert.to_cryptography()) == cert


def test_certificate_built_and_signed(pki):
    key = crypto.PKey()
    key.generate_key(crypto.TYPE_EC, 256)
    name = crypto.X509().get_subject()
    name.CN = "built"
    name.O = "ferrossl"
    cert = crypto.X509()
    cert.set_version(2)
    cert.set_serial_number(77)
    cert.set_subject(name)
    cert.set_issuer(name)
    cert.set_pubkey(key)
    cert.gmtime_adj_notBefore(-60)
    cert.gmtime_adj_notAfter(3600)
    cert.set_notBefore(b"20250101000000Z")
    cert.set_notAfter(b"20991231235959Z")
    cert.add_extensions([cx509.BasicConstraints(ca=True, path_length=None)])
    cert.sign(key, "sha256")
    assert cert.get_serial_number() == 77
    assert cert.get_issuer() == cert.get_subject()
    assert cert.get_notAfter() == b"20991231235959Z"
    assert cert.get_pubkey().bits() == 256
    with pytest.raises(ValueError):
        cert.set_version(1)
    with pytest.raises(ValueError):
        cert.sign(key, "md-nothing")
    # The certificate it made is usable as a trust anchor.
    store = crypto.X509Store()
    store.add_cert(cert)
    crypto.X509StoreContext(store, cert).verify_certificate()


def test_x509name_components_and_der(pki):
    name = crypto.load_certificate(crypto.FILETYPE_PEM, pki.cert_pem).get_subject()
    copy = crypto.X509Name(name)
    assert copy == name and hash(copy) == hash(name)
    assert copy.get_components() == [(b"CN", b"localhost")]
    assert cx509.Name.from_rfc4514_string("CN=localhost").public_bytes() == copy.der()
    copy.CN = "other"
    assert copy != name and copy.CN == "other"
    assert copy.der() == cx509.Name.from_rfc4514_string("CN=other").public_bytes()
    with pytest.raises(AttributeError):
        copy.no_such_attribute = "x"


def test_pkey_generation_and_conversion():
    key = crypto.PKey()
    key.generate_key(crypto.TYPE_RSA, 2048)
    assert (key.type(), key.bits()) == (crypto.TYPE_RSA, 2048)
    assert key.check()
    ckey = key.to_cryptography_key()
    assert ckey.key_size == 2048
    back = crypto.PKey.from_cryptography_key(ckey)
    assert crypto.dump_privatekey(crypto.FILETYPE_ASN1, back) == crypto.dump_privatekey(crypto.FILETYPE_ASN1, key)
    public = crypto.PKey.from_cryptography_key(ckey.public_key())
    with pytest.raises(TypeError):
        public.check()
    for bits in (256, 384, 521):
        key.generate_key(crypto.TYPE_EC, bits)
        assert (key.type(), key.bits()) == (crypto.TYPE_EC, bits)
    with pytest.raises(crypto.Error):
        key.generate_key(crypto.TYPE_DSA, 2048)  # refused on purpose
    with pytest.raises(crypto.Error):
        key.generate_key(crypto.TYPE_RSA, 1024)  # the engine signs with 2048 bits and more
    with pytest.raises(ValueError):
        key.generate_key(crypto.TYPE_RSA, 0)


def test_key_load_and_dump_functions(pki):
    key = crypto.load_privatekey(crypto.FILETYPE_PEM, pki.key_pem)
    der = crypto.dump_privatekey(crypto.FILETYPE_ASN1, key)
    assert crypto.load_privatekey(crypto.FILETYPE_ASN1, der).bits() == 256
    assert crypto.dump_privatekey(crypto.FILETYPE_PEM, key).startswith(b"-----BEGIN PRIVATE KEY-----")
    assert crypto.dump_privatekey(crypto.FILETYPE_TEXT, key).startswith(b"Private-Key: (256 bit)")
    encrypted = crypto.dump_privatekey(crypto.FILETYPE_PEM, key, "aes-256-cbc", b"pw")
    assert crypto.load_privatekey(crypto.FILETYPE_PEM, encrypted, b"pw").bits() == 256
    assert crypto.load_privatekey(crypto.FILETYPE_PEM, encrypted, lambda verify: b"pw").bits() == 256
    with pytest.raises(crypto.Error):
        crypto.load_privatekey(crypto.FILETYPE_PEM, encrypted, b"wrong")
    pem = crypto.dump_publickey(crypto.FILETYPE_PEM, key)
    public = crypto.load_publickey(crypto.FILETYPE_PEM, pem)
    assert crypto.dump_publickey(crypto.FILETYPE_ASN1, public) == crypto.dump_publickey(crypto.FILETYPE_ASN1, key)
    cert = crypto.load_certificate(crypto.FILETYPE_PEM, pki.cert_pem)
    assert crypto.dump_publickey(crypto.FILETYPE_ASN1, cert.get_pubkey()) == crypto.dump_publickey(crypto.FILETYPE_ASN1, key)


def test_store_and_store_context(pki, tmp_path):
    ca = crypto.load_certificate(crypto.FILETYPE_PEM, pki.ca_pem)
    leaf = crypto.load_certificate(crypto.FILETYPE_PEM, pki.cert_pem)
    empty = crypto.X509Store()
    ctx = crypto.X509StoreContext(empty, leaf)
    with pytest.raises(crypto.X509StoreContextError) as e:
        ctx.verify_certificate()
    assert e.value.errors[0] == 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    assert e.value.certificate is leaf
    store = crypto.X509Store()
    store.load_locations(str(pki.ca_path))
    store.set_flags(crypto.X509StoreFlags.PARTIAL_CHAIN)
    ctx.set_store(store)
    chain = ctx.get_verified_chain()
    assert [c.get_subject().CN for c in chain] == ["localhost", "ferrossl python test CA"]
    store.add_cert(ca)
    with pytest.raises(crypto.Error):
        store.add_crl(object())  # CRLs are refused
    with pytest.raises(crypto.Error):
        store.set_time(datetime.datetime.now())


def test_elliptic_curves_match_the_key_exchange(pki):
    names = {c.name for c in crypto.get_elliptic_curves()}
    assert names == {"prime256v1", "secp384r1", "X25519"}
    assert crypto.get_elliptic_curve("secp384r1").name == "secp384r1"
    with pytest.raises(ValueError):
        crypto.get_elliptic_curve("secp256k1")
    # Every listed NIST curve is one a handshake can run on.
    for curve in (ec.SECP256R1(), ec.SECP384R1()):
        sctx = server_context(pki)
        sctx.set_tmp_ecdh(curve)
        client, server = memory_pair(pki, client_context(pki), sctx)
        handshake(client, server)
        assert server.get_group_name() == curve.name
    with pytest.raises(SSL.Error):
        server_context(pki).set_tmp_ecdh(ec.SECP521R1())  # no P-521 key exchange


def test_version_text():
    assert SSL.SSLeay_version(SSL.SSLEAY_VERSION) == SSL.OpenSSL_version(SSL.OPENSSL_VERSION)
    assert SSL.OpenSSL_version(12345) == b"not available"


def _key_usage(**allowed: bool) -> cx509.KeyUsage:
    bits = dict.fromkeys(
        [
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    bits.update(allowed)
    return cx509.KeyUsage(**bits)


def _issue(subject: str, issuer_key, issuer_name: str, *, ca: bool, usage: cx509.KeyUsage | None):
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = lambda cn: cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, cn)])  # noqa: E731
    builder = (
        cx509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer_name))
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(cx509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return crypto.X509.from_cryptography(cert), key


def test_store_context_checks_key_usage():
    """KeyUsage as `openssl verify -purpose sslserver` checks it (RFC 5280 §4.2.1.3): a CA must
    be allowed keyCertSign (else X509_V_ERR_INVALID_CA at its depth, as pyOpenSSL reports too),
    the leaf one of digitalSignature, keyEncipherment, keyAgreement (else
    X509_V_ERR_INVALID_PURPOSE; pyOpenSSL checks no purpose, see docs/guide-python.md)."""
    root, root_key = _issue("root", None, "root", ca=True, usage=_key_usage(key_cert_sign=True))
    store = crypto.X509Store()
    store.add_cert(root)

    def verify(leaf_usage, inter_usage):
        inter, inter_key = _issue("inter", root_key, "root", ca=True, usage=inter_usage)
        leaf, _ = _issue("leaf", inter_key, "inter", ca=False, usage=leaf_usage)
        try:
            crypto.X509StoreContext(store, leaf, [inter]).verify_certificate()
        except crypto.X509StoreContextError as e:
            return e.errors[0], e.errors[1], e.errors[2]
        return 0, 0, "ok"

    signing = _key_usage(digital_signature=True)
    cert_sign = _key_usage(key_cert_sign=True)
    assert verify(signing, cert_sign) == (0, 0, "ok")
    assert verify(signing, None) == (0, 0, "ok")
    assert verify(_key_usage(key_encipherment=True), cert_sign) == (0, 0, "ok")
    assert verify(signing, signing) == (79, 1, "invalid CA certificate")
    assert verify(cert_sign, cert_sign) == (26, 0, "unsuitable certificate purpose")
    assert SSL.X509VerificationCodes.ERR_INVALID_CA == 79
