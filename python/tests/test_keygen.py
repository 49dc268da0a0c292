"""Key generation needs no ``cryptography``: in an interpreter where it cannot be imported,
``PKey.generate_key`` makes RSA and EC keys that then sign a handshake (the certificate for
the key comes from ``openssl req``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)

SCRIPT = textwrap.dedent(
    """
    import subprocess, sys
    sys.modules["cryptography"] = None  # any import of it now fails
    try:
        import cryptography
    except ImportError:
        pass
    else:
        raise SystemExit("cryptography is still importable")
    from ferrossl import SSL, crypto

    workdir, key_type, bits = sys.argv[1], getattr(crypto, sys.argv[2]), int(sys.argv[3])
    key = crypto.PKey()
    key.generate_key(key_type, bits)
    assert (key.type(), key.bits()) == (key_type, bits), (key.type(), key.bits())
    with open(f"{workdir}/key.pem", "wb") as f:
        f.write(crypto.dump_privatekey(crypto.FILETYPE_PEM, key))
    subprocess.run(
        ["openssl", "req", "-x509", "-new", "-key", f"{workdir}/key.pem", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-days", "1", "-out", f"{workdir}/cert.pem"],
        check=True, capture_output=True, timeout=60,
    )
    with open(f"{workdir}/cert.pem", "rb") as f:
        cert = crypto.load_certificate(crypto.FILETYPE_PEM, f.read())

    server_ctx = SSL.Context(SSL.TLS_METHOD)
    server_ctx.use_certificate(cert)
    server_ctx.use_privatekey(key)
    server_ctx.check_privatekey()
    server_ctx.set_client_ca_list([cert.get_subject()])  # the name keeps its DER
    client_ctx = SSL.Context(SSL.TLS_METHOD)
    client_ctx.load_verify_locations(f"{workdir}/cert.pem")
    client_ctx.set_verify(SSL.VERIFY_PEER)
    client = SSL.Connection(client_ctx, None)
    client.set_connect_state()
    server = SSL.Connection(server_ctx, None)
    server.set_accept_state()
    for sender, receiver in ((client, server), (server, client), (client, server)):
        try:
            sender.do_handshake()
        except SSL.WantReadError:
            pass
        receiver.bio_write(sender.bio_read(65536))
    server.do_handshake()
    assert client.get_peer_certificate().get_pubkey().bits() == bits
    print("handshake done", client.get_protocol_version_name())
    """
)


@pytest.mark.parametrize("key_type,bits", [("TYPE_RSA", 2048), ("TYPE_RSA", 3072), ("TYPE_EC", 256), ("TYPE_EC", 384)])
def test_generated_key_signs_a_handshake_without_cryptography(tmp_path, key_type, bits):
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is needed to certify the generated key")
        pytest.skip("openssl is not installed (it certifies the generated key)")
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), key_type, str(bits)],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "handshake done TLSv1.3"
