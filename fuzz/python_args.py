"""Fuzzes the Python module's argument handling with atheris: each input picks an entry point
of ferrossl.SSL / ferrossl.crypto and builds its arguments (bytes, str, ints of any size, None,
lists, buffers, paths, callables, objects whose __fspath__, __index__, __len__, __bool__ or
__bytes__ misbehave) from the fuzzer's bytes.

The documented exceptions (TypeError, ValueError, OverflowError, OSError, AttributeError,
SSL.Error, crypto.Error, ...) are answers. Anything else escapes and is a finding: a pyo3 PanicException
(a BaseException, so nothing here catches it), SystemError, another exception type, a crash,
or a hang (libFuzzer's -timeout).

Usage: python fuzz/python_args.py [libFuzzer flags and corpus dirs]; fuzz/run.sh runs it.
"""

import os
import pathlib
import sys
import tempfile
import warnings

import atheris

with atheris.instrument_imports():
    from ferrossl import SSL, crypto

# str-for-bytes arguments warn on purpose; the warnings are not findings.
warnings.simplefilter("ignore")

FUZZ = os.path.dirname(os.path.abspath(__file__))


class Boom(Exception):
    """What the misbehaving objects below raise: expected to come back unchanged."""


# AttributeError too: like pyOpenSSL, the wrappers duck-type some arguments (dump_certificate
# reads cert._signed()), so a wrong type can fail on a missing attribute. MemoryError: list()
# preallocates what an object's __len__ claims (Rust's own allocation failures abort instead).
EXPECTED = (TypeError, ValueError, OverflowError, OSError, NotImplementedError, AttributeError, MemoryError,
            SSL.Error, crypto.Error, crypto.X509StoreContextError, Boom)


def _seed(target: str, name: str) -> bytes:
    # Corpus seeds start with the selector byte of their Rust target.
    with open(os.path.join(FUZZ, "corpus", target, name), "rb") as f:
        return f.read()[1:]


# Real files for the path-taking loaders, made once per process.
_TMP = tempfile.mkdtemp(prefix="ferrossl-fuzz-py-")
CERT_PEM = _seed("x509", "pem-chain")
KEY_PEM = _seed("pkey", "ec-sec1")
FILES = {
    "chain": CERT_PEM,
    "key": KEY_PEM,
    "key-enc": _seed("pkey", "ec-pkcs8-aes"),
    "der": _seed("x509", "der-server"),
    "empty": b"",
}
for _name, _data in FILES.items():
    with open(os.path.join(_TMP, _name), "wb") as _f:
        _f.write(_data)
os.mkdir(os.path.join(_TMP, "hashed"))
with open(os.path.join(_TMP, "hashed", "0123abcd.0"), "wb") as _f:
    _f.write(CERT_PEM)
PATHS = [os.path.join(_TMP, n) for n in (*FILES, "hashed", "missing")]


def established() -> tuple[SSL.Connection, SSL.Connection]:
    """A client and server that finished a handshake over memory BIOs."""
    server_ctx = SSL.Context(SSL.TLS_METHOD)
    server_ctx.use_certificate_chain_file(os.path.join(_TMP, "chain"))
    server_ctx.use_privatekey_file(os.path.join(_TMP, "key"))
    client, server = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None), SSL.Connection(server_ctx, None)
    client.set_connect_state()
    server.set_accept_state()
    handshake(client, server)
    return client, server


def handshake(client: SSL.Connection, server: SSL.Connection) -> None:
    for _ in range(8):
        for conn, peer in ((client, server), (server, client)):
            try:
                conn.do_handshake()
            except SSL.WantReadError:
                pass
            try:
                peer.bio_write(conn.bio_read(1 << 16))
            except SSL.WantReadError:
                pass


CLIENT, SERVER = established()


class Odd:
    """An object whose protocol methods answer `value` or raise Boom."""

    def __init__(self, value: object) -> None:
        self.value = value

    def _answer(self) -> object:
        if isinstance(self.value, Boom):
            raise self.value
        return self.value

    def __fspath__(self) -> object:
        return self._answer()

    def __index__(self) -> object:
        return self._answer()

    def __int__(self) -> object:
        return self._answer()

    def __len__(self) -> object:
        return self._answer()

    def __bool__(self) -> object:
        return self._answer()

    def __bytes__(self) -> object:
        return self._answer()

    def __str__(self) -> object:
        return self._answer()

    def __iter__(self) -> object:
        return iter([self._answer()])

    def __call__(self, *args: object) -> object:
        return self._answer()


class Values:
    """Argument values of every kind from the fuzzer's bytes."""

    def __init__(self, data: bytes) -> None:
        self.fdp = atheris.FuzzedDataProvider(data)

    def pick(self, options: list) -> object:
        return options[self.fdp.ConsumeIntInRange(0, len(options) - 1)] if options else None

    def int(self) -> int:
        kind = self.fdp.ConsumeIntInRange(0, 3)
        if kind == 0:
            return self.fdp.ConsumeIntInRange(-2, 70000)
        if kind == 1:
            bits = self.fdp.ConsumeIntInRange(0, 200)
            return self.pick([1, -1]) * (2 ** bits) + self.fdp.ConsumeIntInRange(-2, 2)
        if kind == 2:
            return self.pick([0, 1, 2, 3, 771, 772, 0xFEFD, 2**31 - 1, 2**31, 2**32, 2**63, 2**64, -(2**63)])
        return self.fdp.ConsumeInt(9)

    def bytes(self) -> bytes:
        if self.fdp.ConsumeBool():
            return self.pick([CERT_PEM, KEY_PEM, FILES["key-enc"], FILES["der"], b"fuzz", b"http/1.1",
                              b"SRTP_AES128_CM_SHA1_80", b"localhost", b"ALL", b"\x00"])
        return self.fdp.ConsumeBytes(self.fdp.ConsumeIntInRange(0, 300))

    def value(self, depth: int = 0) -> object:
        kind = self.fdp.ConsumeIntInRange(0, 15)
        if kind == 0:
            return None
        if kind == 1:
            return self.int()
        if kind in (2, 3):
            return self.bytes()
        if kind == 4:
            return self.fdp.ConsumeUnicode(self.fdp.ConsumeIntInRange(0, 64))
        if kind == 5:
            return self.bytes().decode("latin-1")
        if kind == 6:
            return bytearray(self.bytes())
        if kind == 7:
            return memoryview(self.bytes())
        if kind == 8:
            return self.fdp.ConsumeBool()
        if kind == 9:
            return self.fdp.ConsumeFloat()
        if kind == 10 and depth < 2:
            return [self.value(depth + 1) for _ in range(self.fdp.ConsumeIntInRange(0, 4))]
        if kind == 11 and depth < 2:
            return tuple(self.value(depth + 1) for _ in range(self.fdp.ConsumeIntInRange(0, 3)))
        if kind == 12:
            return self.path()
        if kind == 13 and depth < 2:
            return Odd(Boom("raised") if self.fdp.ConsumeBool() else self.value(depth + 1))
        if kind == 14:
            return self.pick([object(), SSL.Context(SSL.TLS_METHOD), CLIENT, crypto.PKey(), crypto.X509(),
                              crypto.load_certificate(crypto.FILETYPE_PEM, CERT_PEM), SSL.Session()])
        return self.fdp.ConsumeBytes(4)

    def path(self) -> object:
        path = self.pick(PATHS)
        return self.pick([path, path.encode(), pathlib.Path(path), Odd(path), Odd(path.encode()),
                          path + "\x00", b"\xff\xfe" + path.encode()])

    def callback(self) -> object:
        """A callable answering a fuzzed value (or raising), or some non-callable."""
        if self.fdp.ConsumeIntInRange(0, 4) == 0:
            return self.value()
        answer = self.value()
        return Odd(answer) if not callable(answer) else (lambda *args: answer)


def context(v: Values) -> SSL.Context:
    return SSL.Context(v.pick([SSL.TLS_METHOD, SSL.TLS_CLIENT_METHOD, SSL.TLS_SERVER_METHOD, SSL.DTLS_METHOD]))


def connection(v: Values) -> SSL.Connection:
    conn = SSL.Connection(context(v), None)
    (conn.set_connect_state if v.fdp.ConsumeBool() else conn.set_accept_state)()
    return conn


def callbacks_handshake(v: Values) -> None:
    """A handshake whose callbacks answer fuzzed values: their results cross back into Rust."""
    server_ctx, client_ctx = SSL.Context(SSL.TLS_METHOD), SSL.Context(SSL.TLS_METHOD)
    server_ctx.use_certificate_chain_file(os.path.join(_TMP, "chain"))
    server_ctx.use_privatekey_file(os.path.join(_TMP, "key"))
    client_ctx.set_alpn_protos([b"h2", b"http/1.1"])
    which = v.fdp.ConsumeIntInRange(0, 4)
    cb = v.callback()
    if which == 0:
        server_ctx.set_alpn_select_callback(cb)
    elif which == 1:
        server_ctx.set_tlsext_servername_callback(cb)
    elif which == 2:
        client_ctx.set_verify(SSL.VERIFY_PEER, cb)
    elif which == 3:
        server_ctx.set_info_callback(cb)
    else:
        client_ctx.set_keylog_callback(cb)
    client, server = SSL.Connection(client_ctx, None), SSL.Connection(server_ctx, None)
    client.set_tlsext_host_name(b"localhost")
    client.set_connect_state()
    server.set_accept_state()
    handshake(client, server)


def recv_into(v: Values) -> None:
    CLIENT.recv_into(v.pick([bytearray(v.fdp.ConsumeIntInRange(0, 64)), v.value()]), v.value(), v.value())


OPS = [
    lambda v: SSL.Context(v.value()),
    lambda v: context(v).set_options(v.value()),
    lambda v: context(v).clear_options(v.value()),
    lambda v: context(v).set_mode(v.value()),
    lambda v: context(v).set_min_proto_version(v.value()),
    lambda v: context(v).set_max_proto_version(v.value()),
    lambda v: context(v).set_cipher_list(v.value()),
    lambda v: context(v).set_tls13_ciphersuites(v.value()),
    lambda v: context(v).set_alpn_protos(v.value()),
    lambda v: context(v).set_session_id(v.value()),
    lambda v: context(v).set_tlsext_use_srtp(v.value()),
    lambda v: context(v).set_verify(v.value(), v.callback()),
    lambda v: context(v).set_verify_depth(v.value()),
    lambda v: context(v).set_timeout(v.value()),
    lambda v: context(v).set_session_cache_mode(v.value()),
    lambda v: context(v).set_tmp_ecdh(v.value()),
    lambda v: context(v).use_certificate_file(v.path(), v.value()),
    lambda v: context(v).use_certificate_chain_file(v.value()),
    lambda v: context(v).load_verify_locations(v.value(), v.value()),
    lambda v: context(v).load_client_ca(v.value()),
    lambda v: context(v).load_tmp_dh(v.value()),
    lambda v: context(v).use_certificate(v.value()),
    lambda v: context(v).use_privatekey(v.value()),
    lambda v: context(v).add_extra_chain_cert(v.value()),
    lambda v: context(v).add_client_ca(v.value()),
    lambda v: context(v).set_client_ca_list(v.value()),
    lambda v: context(v).set_ocsp_server_callback(v.callback(), v.value()),
    lambda v: (lambda c: (c.set_passwd_cb(v.callback(), v.value()), c.use_privatekey_file(v.path(), v.value())))(context(v)),
    lambda v: SSL.Connection(context(v), v.value()),
    lambda v: connection(v).set_tlsext_host_name(v.value()),
    lambda v: connection(v).bio_write(v.value()),
    lambda v: connection(v).bio_read(v.value()),
    lambda v: connection(v).recv(v.value(), v.value()),
    lambda v: connection(v).send(v.value(), v.value()),
    lambda v: connection(v).set_alpn_protos(v.value()),
    lambda v: connection(v).set_ciphertext_mtu(v.value()),
    lambda v: connection(v).set_shutdown(v.value()),
    lambda v: connection(v).set_options(v.value()),
    lambda v: connection(v).set_verify(v.value(), v.callback()),
    lambda v: connection(v).set_session(v.value()),
    lambda v: connection(v).set_context(v.value()),
    lambda v: connection(v).use_certificate(v.value()),
    lambda v: connection(v).use_privatekey(v.value()),
    lambda v: CLIENT.export_keying_material(v.value(), v.value(), v.value()),
    lambda v: CLIENT.recv(v.value(), v.value()),
    lambda v: CLIENT.send(v.value(), v.value()),
    lambda v: CLIENT.sendall(v.value(), v.value()),
    lambda v: SERVER.bio_read(v.value()),
    recv_into,
    callbacks_handshake,
    lambda v: crypto.load_certificate(v.value(), v.value()),
    lambda v: crypto.load_privatekey(v.value(), v.value(), v.callback() if v.fdp.ConsumeBool() else v.value()),
    lambda v: crypto.load_privatekey(crypto.FILETYPE_PEM, FILES["key-enc"], v.callback()),
    lambda v: crypto.dump_certificate(v.value(), v.value()),
    lambda v: crypto.dump_privatekey(v.value(), crypto.load_privatekey(crypto.FILETYPE_PEM, KEY_PEM), v.value(), v.value()),
    lambda v: crypto.dump_publickey(v.value(), v.value()),
    lambda v: crypto.load_certificate(crypto.FILETYPE_PEM, CERT_PEM).digest(v.value()),
    lambda v: crypto.X509().set_serial_number(v.value()),
    lambda v: crypto.X509().set_notBefore(v.value()),
    lambda v: crypto.X509().gmtime_adj_notAfter(v.value()),
    lambda v: crypto.X509().set_version(v.value()),
    lambda v: crypto.X509().set_subject(v.value()),
    lambda v: crypto.X509Name(v.value()),
    lambda v: crypto.X509Store().add_cert(v.value()),
    lambda v: crypto.X509Store().set_flags(v.value()),
    lambda v: crypto.X509Store().load_locations(v.value(), v.value()),
    lambda v: crypto.X509StoreContext(crypto.X509Store(), crypto.load_certificate(crypto.FILETYPE_PEM, CERT_PEM), v.value()).verify_certificate(),
]


def set_name_attribute(v: Values) -> None:
    name = crypto.load_certificate(crypto.FILETYPE_PEM, CERT_PEM).get_subject()
    attr = v.pick(["CN", "commonName", "O", "emailAddress", "C", v.fdp.ConsumeUnicode(8)])
    try:
        setattr(name, attr, v.value())
    except AttributeError:
        return  # an unknown attribute name, as documented
    repr(name)
    name.get_components()


def generate_key(v: Values) -> None:
    kind, bits = v.value(), v.value()
    # Real RSA key generation above 2048 bits takes seconds: a slow unit, not a finding.
    if kind == crypto.TYPE_RSA and isinstance(bits, int) and bits > 2048:
        return
    crypto.PKey().generate_key(kind, bits)


OPS += [set_name_attribute, generate_key]


def test_one_input(data: bytes) -> None:
    v = Values(data)
    op = OPS[v.fdp.ConsumeIntInRange(0, len(OPS) - 1)]
    try:
        op(v)
    except EXPECTED:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
