"""Regenerates the seed corpus (fuzz/corpus/<target>/) and fixtures/verify-root.pem.

Run with the venv that has ferrossl built (python/.venv/bin/python fuzz/make_corpus.py); it
needs the openssl command. Every key is made up here and thrown away (the verify root's key is
not kept: only chains made now chain to it). Files are overwritten by name; units merged in
by `run.sh --merge` stay.
The TLS and DTLS seeds are flights ferrossl itself writes over memory BIOs; the DTLS 1.3
target runs its own handshake, so its seeds are programs of link operations.
"""

import datetime
import os
import subprocess
import sys
import tempfile

from cryptography import x509

from ferrossl import SSL

FUZZ = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(FUZZ, "corpus")
# The targets split their input into writes at this byte (see fuzz_targets/tls_server.rs).
SPLIT = 0xA5


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    run = subprocess.run(["openssl", *args], input=stdin, capture_output=True)
    if run.returncode:
        sys.exit(f"openssl {' '.join(args)}: {run.stderr.decode()}")
    return run.stdout


def save(target: str, name: str, data: bytes) -> None:
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def make_pki(tmp: str) -> dict[str, str]:
    """A root, an intermediate and a server, a client and a self-signed leaf, EC P-256."""
    p = lambda name: os.path.join(tmp, name)  # noqa: E731
    ext = p("ext.cnf")
    with open(ext, "w") as f:
        f.write(
            "[ca]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n"
            "[server]\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
            "keyUsage=critical,digitalSignature\n"
            "[client]\nextendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n"
        )
    for name in ("root", "inter", "server", "client", "self"):
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", p(name + ".key"))
    openssl("req", "-x509", "-new", "-key", p("root.key"), "-subj", "/O=ferrossl fuzz/CN=Fuzz Root",
            "-days", "7300", "-config", "/dev/null", "-addext", "basicConstraints=critical,CA:true",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", p("root.pem"))
    openssl("req", "-x509", "-new", "-key", p("self.key"), "-subj", "/CN=localhost", "-days", "7300",
            "-config", "/dev/null", "-addext", "subjectAltName=DNS:localhost", "-out", p("self.pem"))
    issued = [("inter", "root", "/O=ferrossl fuzz/CN=Fuzz Intermediate", "ca"),
              ("server", "inter", "/CN=localhost", "server"),
              ("client", "inter", "/CN=fuzz client/emailAddress=client@example.org", "client")]
    for name, issuer, subject, section in issued:
        csr = openssl("req", "-new", "-key", p(name + ".key"), "-subj", subject, "-config", "/dev/null")
        openssl("x509", "-req", "-CA", p(issuer + ".pem"), "-CAkey", p(issuer + ".key"), "-set_serial",
                str(len(name)), "-days", "7300", "-extfile", ext, "-extensions", section,
                "-out", p(name + ".pem"), stdin=csr)
    return {name: p(name) for name in ("root", "inter", "server", "client", "self")}


def der(pem_path: str) -> bytes:
    return openssl("x509", "-in", pem_path, "-outform", "DER")


def x509_seeds(pki: dict[str, str]) -> None:
    chain = read(pki["server"] + ".pem") + read(pki["inter"] + ".pem")
    save("x509", "der-server", b"\x00" + der(pki["server"] + ".pem"))
    save("x509", "der-root", b"\x00" + der(pki["root"] + ".pem"))
    save("x509", "pem-chain", b"\x01" + chain)
    save("x509", "pem-client", b"\x01" + read(pki["client"] + ".pem"))
    name = x509.load_pem_x509_certificate(read(pki["client"] + ".pem")).subject.public_bytes()
    save("x509", "name-der", b"\x02" + name)
    save("x509", "file-chain", b"\x03" + chain)


def pkey_seeds(pki: dict[str, str], tmp: str) -> None:
    # Selector: bit 0 DER (else PEM); bits 1-2 the passphrase answer, 1 = "fuzz".
    ec = pki["server"] + ".key"
    rsa = os.path.join(tmp, "rsa.key")
    openssl("genrsa", "-out", rsa, "2048")
    ed = openssl("genpkey", "-algorithm", "ed25519")
    save("pkey", "ec-sec1", b"\x00" + read(ec))
    save("pkey", "ec-pkcs8", b"\x00" + openssl("pkcs8", "-topk8", "-nocrypt", "-in", ec))
    save("pkey", "ec-der", b"\x01" + openssl("pkcs8", "-topk8", "-nocrypt", "-in", ec, "-outform", "DER"))
    save("pkey", "rsa-pkcs1", b"\x00" + openssl("rsa", "-in", rsa, "-traditional"))
    save("pkey", "ed25519", b"\x00" + ed)
    # One PBKDF2 round keeps each run fast; the fuzzer may still raise it.
    save("pkey", "ec-pkcs8-aes", b"\x02" + openssl("pkcs8", "-topk8", "-in", ec, "-v2", "aes-128-cbc",
                                                   "-iter", "1", "-passout", "pass:fuzz"))
    save("pkey", "ec-dek-aes", b"\x02" + openssl("ec", "-in", ec, "-aes128", "-passout", "pass:fuzz"))
    save("pkey", "ec-dek-des3", b"\x02" + openssl("ec", "-in", ec, "-des3", "-passout", "pass:fuzz"))


def verify_seeds(pki: dict[str, str]) -> None:
    # Settings (see fuzz_targets/verify.rs): flags, callback answers, time (seconds, BE).
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp()).to_bytes(4, "big")

    def seed(name: str, flags: int, certs: list[str], when: bytes = now) -> None:
        body = b"".join(len(d).to_bytes(2, "big") + d for d in (der(c + ".pem") for c in certs))
        save("verify", name, bytes([flags, 0xFF]) + when + body)

    seed("server-chain", 0x12, [pki["server"], pki["inter"]])
    seed("server-ip-depth0", 0x34, [pki["server"], pki["inter"]])
    seed("client-chain", 0x11, [pki["client"], pki["inter"]])
    seed("no-intermediate", 0x10, [pki["server"]])
    seed("trusted-self", 0x1A, [pki["self"]])
    seed("expired", 0x10, [pki["server"], pki["inter"]], b"\xff\xff\xff\x00")
    with open(os.path.join(FUZZ, "fixtures", "verify-root.pem"), "wb") as f:
        f.write(read(pki["root"] + ".pem") + read(pki["self"] + ".pem"))


def parsers_seeds() -> None:
    save("parsers", "pem-headers", b"junk\n-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
         b"DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAECAwQ=\n-----END RSA PRIVATE KEY-----\n")
    save("parsers", "cipher-list", b"ECDHE+AESGCM:!aNULL:-SHA:@STRENGTH:DEFAULT@SECLEVEL=2")
    save("parsers", "ciphersuites", b"TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256")


def pump(src: SSL.Connection) -> bytes:
    out = b""
    while True:
        try:
            out += src.bio_read(65536)
        except SSL.WantReadError:
            return out


def step(conn: SSL.Connection) -> None:
    try:
        conn.do_handshake()
    except SSL.WantReadError:
        pass


def flights(method: int, pki: dict[str, str], max_version: int = 0, cookies: bool = False) -> tuple[bytes, bytes]:
    """The client's first flight and the server's answer to it, with no 0xA5 byte in either
    (the targets would split there): fresh randoms and keys until none appears."""
    for _ in range(5000):
        client_ctx = SSL.Context(method)
        client_ctx._native.set_groups(["X25519"])
        if max_version:
            client_ctx.set_max_proto_version(max_version)
        server_ctx = SSL.Context(method)
        server_ctx.use_certificate_file(pki["self"] + ".pem")
        server_ctx.use_privatekey_file(pki["self"] + ".key")
        if cookies:
            server_ctx.set_options(SSL.OP_COOKIE_EXCHANGE)
        client, server = SSL.Connection(client_ctx, None), SSL.Connection(server_ctx, None)
        client.set_connect_state()
        server.set_accept_state()
        step(client)
        hello = pump(client)
        server.bio_write(hello)
        step(server)
        answer = pump(server)
        if SPLIT not in hello and SPLIT not in answer:
            return hello, answer
    sys.exit("no flight without 0xA5 found")


def handshake_seeds(pki: dict[str, str]) -> None:
    for version, tag in ((0, "tls13"), (SSL.TLS1_2_VERSION, "tls12")):
        hello, answer = flights(SSL.TLS_METHOD, pki, version)
        save("tls_server", "client-hello-" + tag, hello)
        save("tls_client", "server-flight-" + tag, answer)
    hello, answer = flights(SSL.DTLS_METHOD, pki)
    save("dtls", "server-client-hello", b"\x00" + hello)
    save("dtls", "client-server-flight", b"\x01" + answer)
    hello, verify_request = flights(SSL.DTLS_METHOD, pki, cookies=True)
    save("dtls", "cookie-server-client-hello", b"\x02" + hello)
    save("dtls", "client-hello-verify-request", b"\x01" + verify_request)


def dtls13_seeds() -> None:
    """Programs for fuzz_targets/dtls13.rs, which runs the handshake itself: a settings byte
    (bits: client 1.3 only, classic group, server 1.3 only, cookies, CIDs, small MTU, resume),
    then operations (low nibble: 0-2 deliver, 3 drop, 4 junk, 5-6 forged record, 7-8 changed
    record, 9 replay, 10-11 time, 12-13 application, 14-15 deliver all; bit 7: the client)."""
    settle = b"\x0e\x0e\x0e"  # the handshake, whatever it takes
    send = b"\x8c\x0a" + b"0123456789"  # the client sends ten bytes
    changed = b"\x07\x00\x00\x00\x05\x40"  # the server gets that record with a byte changed
    forged = b"\x85\x0f\x12\x34\x08" + bytes(range(24))  # the client gets a forged record
    save("dtls13", "handshake", b"\x00")
    save("dtls13", "established-changed-and-forged", b"\x00" + settle + send + changed + forged + b"\x0e")
    # Cookies, connection IDs, a 300-byte MTU and the classic group.
    save("dtls13", "cookie-cid-small-mtu", b"\x3a" + settle + send + changed + forged)
    # DTLS 1.3 only on both ends; the first ClientHello lost, the timer resends it.
    save("dtls13", "lost-hello-timer", b"\x05\x03\x00\x0a\x0a\x0a\x0b\x0e\x0e")
    # A KeyUpdate asking the peer to update too, then data under the new keys.
    save("dtls13", "key-update", b"\x00" + settle + b"\x8c\x84\x0e\x0e" + send + changed + b"\x0e")
    # A resumed session (from a clean handshake the target made first), then the same attacks;
    # with cookies, connection IDs and a small MTU too.
    save("dtls13", "resumed", b"\x40" + settle + send + changed + forged + b"\x0e")
    save("dtls13", "resumed-cookie-cid-small-mtu", b"\x7a" + settle + send + changed + forged)
    # Junk before the ClientHello, a replayed datagram and a close.
    save("dtls13", "junk-replay-close", b"\x00\x04\x04" + bytes(16) + b"\x00\x00\x09\x00" + settle + b"\x8c\x03\x0e")


def main() -> None:
    os.makedirs(os.path.join(FUZZ, "fixtures"), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(tmp)
        x509_seeds(pki)
        pkey_seeds(pki, tmp)
        verify_seeds(pki)
        handshake_seeds(pki)
    parsers_seeds()
    dtls13_seeds()
    # The Python argument fuzzer starts from a few byte strings of its own.
    for i, seed in enumerate((b"\x00" * 16, bytes(range(64)), b"\xff" * 32)):
        save("python_args", f"seed-{i}", seed)


if __name__ == "__main__":
    main()
