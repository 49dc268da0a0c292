"""pyOpenSSL's ``OpenSSL.SSL`` API on ferrossl.

The classes check their arguments the way pyOpenSSL does and hand the work to ferrossl's Rust
library (``ferrossl._native``). What the engine refuses on purpose (SSLv2/3, TLS 1.0/1.1,
renegotiation, Finished messages, per-connection certificates) raises ``Error`` with a reason,
as listed in the project's docs/refused.md.
"""

from __future__ import annotations

import os
import threading
import typing
import warnings
import weakref
from errno import errorcode  # noqa: F401  (pyOpenSSL re-exports it through this module)
from functools import wraps as _wraps

from . import _native
from .crypto import X509, FILETYPE_PEM, PKey, X509Name, X509Store, _EllipticCurve, _Handle

__all__ = [
    "Connection",
    "Context",
    "Error",
    "Session",
    "SysCallError",
    "WantReadError",
    "WantWriteError",
    "WantX509LookupError",
    "ZeroReturnError",
    "NO_OVERLAPPING_PROTOCOLS",
    "OpenSSL_version",
    "SSLeay_version",
]

Error = _native.Error
WantReadError = _native.WantReadError
WantWriteError = _native.WantWriteError
WantX509LookupError = _native.WantX509LookupError
ZeroReturnError = _native.ZeroReturnError
SysCallError = _native.SysCallError

# Version information: ferrossl and its engine.
OPENSSL_VERSION = SSLEAY_VERSION = 0
OPENSSL_CFLAGS = SSLEAY_CFLAGS = 1
OPENSSL_BUILT_ON = SSLEAY_BUILT_ON = 2
OPENSSL_PLATFORM = SSLEAY_PLATFORM = 3
OPENSSL_DIR = SSLEAY_DIR = 4
#: The OpenSSL API level whose semantics ferrossl follows (3.0).
OPENSSL_VERSION_NUMBER = 0x30000000

_VERSION_TEXT = {
    # "OpenSSL <version> ..." as OpenSSL words it: programs parse the second word as the
    # version of the OpenSSL API they talk to (OPENSSL_VERSION_NUMBER's); what runs is named
    # after it.
    OPENSSL_VERSION: f"OpenSSL 3.0.0 compatible (ferrossl {_native.VERSION}, rustls 0.23, aws-lc-rs)".encode(),
    OPENSSL_CFLAGS: b"compiler: rustc",
    OPENSSL_BUILT_ON: b"built on: cargo",
    OPENSSL_PLATFORM: f"platform: {os.uname().sysname.lower()}".encode() if hasattr(os, "uname") else b"platform: unknown",
    OPENSSL_DIR: b'OPENSSLDIR: "n/a (ferrossl)"',
}


def OpenSSL_version(type: int) -> bytes:
    """Version information about ferrossl and its engine, as bytes.

    :param type: ``OPENSSL_VERSION``, ``OPENSSL_CFLAGS``, ``OPENSSL_BUILT_ON``,
        ``OPENSSL_PLATFORM`` or ``OPENSSL_DIR``; another value gives ``b"not available"``.
    """
    return _VERSION_TEXT.get(type, b"not available")


SSLeay_version = OpenSSL_version

# Methods (pyOpenSSL's numbers).
SSLv2_METHOD = 1
SSLv3_METHOD = 2
SSLv23_METHOD = 3
TLSv1_METHOD = 4
TLSv1_1_METHOD = 5
TLSv1_2_METHOD = 6
TLS_METHOD = 7
TLS_SERVER_METHOD = 8
TLS_CLIENT_METHOD = 9
DTLS_METHOD = 10
DTLS_SERVER_METHOD = 11
DTLS_CLIENT_METHOD = 12

SSL3_VERSION = 0x300
TLS1_VERSION = 0x301
TLS1_1_VERSION = 0x302
TLS1_2_VERSION = 0x303
TLS1_3_VERSION = 0x304
# ferrossl additions under the C library names (pyOpenSSL 26.4 and cryptography's bindings
# define no DTLS version): the DTLS versions for set_min/max_proto_version and what
# get_protocol_version() reports. DTLS_METHOD negotiates DTLS 1.3, or 1.2 with peers that lack it.
DTLS1_2_VERSION = 0xFEFD
DTLS1_3_VERSION = 0xFEFC

OP_NO_SSLv2 = 0
OP_NO_SSLv3 = 1 << 25
OP_NO_TLSv1 = 1 << 26
OP_NO_TLSv1_1 = 1 << 28
OP_NO_TLSv1_2 = 1 << 27
OP_NO_TLSv1_3 = 1 << 29
OP_NO_DTLSv1 = 1 << 26
OP_NO_DTLSv1_2 = 1 << 27
MODE_RELEASE_BUFFERS = 0x10
_MODE_ENABLE_PARTIAL_WRITE = 0x1
OP_SINGLE_DH_USE = 0
OP_SINGLE_ECDH_USE = 0
OP_EPHEMERAL_RSA = 0
OP_MICROSOFT_SESS_ID_BUG = 0
OP_NETSCAPE_CHALLENGE_BUG = 0
OP_NETSCAPE_REUSE_CIPHER_CHANGE_BUG = 0
OP_SSLREF2_REUSE_CERT_TYPE_BUG = 0
OP_MICROSOFT_BIG_SSLV3_BUFFER = 0
OP_MSIE_SSLV2_RSA_PADDING = 0
OP_SSLEAY_080_CLIENT_DH_BUG = 0
OP_TLS_D5_BUG = 0
OP_TLS_BLOCK_PADDING_BUG = 0
OP_DONT_INSERT_EMPTY_FRAGMENTS = 1 << 11
OP_CIPHER_SERVER_PREFERENCE = 1 << 22
OP_TLS_ROLLBACK_BUG = 1 << 23
OP_PKCS1_CHECK_1 = 0
OP_PKCS1_CHECK_2 = 0
OP_NETSCAPE_CA_DN_BUG = 0
OP_NETSCAPE_DEMO_CIPHER_CHANGE_BUG = 0
OP_NO_COMPRESSION = 1 << 17
OP_NO_QUERY_MTU = 1 << 12
OP_COOKIE_EXCHANGE = 1 << 13
OP_NO_TICKET = 1 << 14
OP_NO_RENEGOTIATION = 1 << 30
OP_IGNORE_UNEXPECTED_EOF = 1 << 7
OP_LEGACY_SERVER_CONNECT = 1 << 2
OP_ALL = (1 << 31) | (1 << 11) | (1 << 4) | (1 << 6)

VERIFY_PEER = 0x01
VERIFY_FAIL_IF_NO_PEER_CERT = 0x02
VERIFY_CLIENT_ONCE = 0x04
VERIFY_POST_HANDSHAKE = 0x08
VERIFY_NONE = 0x00

SESS_CACHE_OFF = 0x0
SESS_CACHE_CLIENT = 0x1
SESS_CACHE_SERVER = 0x2
SESS_CACHE_BOTH = 0x3
SESS_CACHE_NO_AUTO_CLEAR = 0x80
SESS_CACHE_NO_INTERNAL_LOOKUP = 0x100
SESS_CACHE_NO_INTERNAL_STORE = 0x200
SESS_CACHE_NO_INTERNAL = 0x300

SSL_ST_CONNECT = 0x1000
SSL_ST_ACCEPT = 0x2000
SSL_ST_MASK = 0x0FFF
SSL_CB_LOOP = 0x01
SSL_CB_EXIT = 0x02
SSL_CB_READ = 0x04
SSL_CB_WRITE = 0x08
SSL_CB_ALERT = 0x4000
SSL_CB_READ_ALERT = SSL_CB_ALERT | SSL_CB_READ
SSL_CB_WRITE_ALERT = SSL_CB_ALERT | SSL_CB_WRITE
SSL_CB_ACCEPT_LOOP = SSL_ST_ACCEPT | SSL_CB_LOOP
SSL_CB_ACCEPT_EXIT = SSL_ST_ACCEPT | SSL_CB_EXIT
SSL_CB_CONNECT_LOOP = SSL_ST_CONNECT | SSL_CB_LOOP
SSL_CB_CONNECT_EXIT = SSL_ST_CONNECT | SSL_CB_EXIT
SSL_CB_HANDSHAKE_START = 0x10
SSL_CB_HANDSHAKE_DONE = 0x20

SENT_SHUTDOWN = 1
RECEIVED_SHUTDOWN = 2


class X509VerificationCodes:
    """X509_V_* result codes (OpenSSL's)."""

    OK = 0
    ERR_UNABLE_TO_GET_ISSUER_CERT = 2
    ERR_CERT_SIGNATURE_FAILURE = 7
    ERR_CERT_NOT_YET_VALID = 9
    ERR_CERT_HAS_EXPIRED = 10
    ERR_DEPTH_ZERO_SELF_SIGNED_CERT = 18
    ERR_SELF_SIGNED_CERT_IN_CHAIN = 19
    ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
    ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
    ERR_CERT_CHAIN_TOO_LONG = 22
    ERR_CERT_REVOKED = 23
    ERR_INVALID_CA = 79
    ERR_PATH_LENGTH_EXCEEDED = 25
    ERR_INVALID_PURPOSE = 26
    ERR_CERT_UNTRUSTED = 27
    ERR_CERT_REJECTED = 28
    ERR_HOSTNAME_MISMATCH = 62
    ERR_IP_ADDRESS_MISMATCH = 64


class _NoOverlappingProtocols:
    """The ALPN select callback's answer for "go on without ALPN"."""


NO_OVERLAPPING_PROTOCOLS = _NoOverlappingProtocols()


def _not_supported(what: str) -> Error:
    return Error([("SSL routines", "", f"not supported: {what}")])


def _make_requires(flag: bool, error: str) -> typing.Callable[[typing.Callable[..., typing.Any]], typing.Callable[..., typing.Any]]:
    """A decorator that raises NotImplementedError(error) unless ``flag`` holds."""

    def _requires_decorator(func: typing.Callable[..., typing.Any]) -> typing.Callable[..., typing.Any]:
        if flag:
            return func

        @_wraps(func)
        def explode(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
            raise NotImplementedError(error)

        return explode

    return _requires_decorator


def _native_cert(cert: typing.Any) -> _native.NativeX509:
    if isinstance(cert, X509):
        if cert._native is None:
            raise Error([("SSL routines", "", "the certificate is not initialized (not signed)")])
        return cert._signed()
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding
    except ImportError:
        pass
    else:
        if isinstance(cert, x509.Certificate):
            return _native.NativeX509.from_der(cert.public_bytes(Encoding.DER))
    raise TypeError("cert must be an X509 or cryptography certificate")


def _native_key(pkey: typing.Any) -> _native.NativePKey:
    if isinstance(pkey, PKey):
        if pkey._native is None:
            raise TypeError("pkey must be a private key")
        return pkey._native
    try:
        return PKey.from_cryptography_key(pkey)._native  # type: ignore[return-value]
    except (TypeError, Exception) as e:
        if isinstance(e, TypeError) or not hasattr(pkey, "private_bytes"):
            raise TypeError("pkey must be a PKey or a cryptography private key") from None
        raise


class Session:
    """A TLS session, for resumption: take it from ``Connection.get_session`` and give it to
    ``Connection.set_session`` of a later connection with the same context. ``Session()``
    makes an empty one; sessions cannot be serialized (the engine keeps them opaque)."""

    def __init__(self) -> None:
        self._native = _native.NativeSession()
        self._context: Context | None = None


class Context:
    """The settings shared by many connections: protocol versions, identity, trust,
    verification, callbacks.

    :param method: one of the ``*_METHOD`` constants (``TLS_METHOD``, ``TLS_CLIENT_METHOD``,
        ``TLS_SERVER_METHOD``, ``DTLS_METHOD``...).
    :raises TypeError: if ``method`` is not an int.
    :raises ValueError: for an unknown method number.
    :raises Error: for SSLv2, SSLv3, TLS 1.0 and TLS 1.1 methods, refused on purpose.
    """

    def __init__(self, method: int) -> None:
        if not isinstance(method, int):
            raise TypeError("method must be an integer")
        if method not in range(1, 13):
            raise ValueError("No such protocol")
        self._native = _native.NativeContext(method)
        #: See :class:`crypto._Handle` (Twisted hands it to ``OpenSSL._util.lib``).
        self._context = _Handle("SSL_CTX")
        # As pyOpenSSL does: a send writes at most one record and reports how much it took.
        self._native.set_mode(_MODE_ENABLE_PARTIAL_WRITE)
        self._method = method
        self._app_data: typing.Any = None
        self._verify_callback: typing.Any = None
        self._passphrase_helper: typing.Any = None

    def set_min_proto_version(self, version: int) -> None:
        """Sets the lowest protocol version the context negotiates.

        :param version: ``TLS1_2_VERSION`` or ``TLS1_3_VERSION`` (``0`` for the lowest supported);
            for DTLS, ``DTLS1_2_VERSION`` or ``DTLS1_3_VERSION`` (which turns DTLS 1.2 off).
        :raises Error: for SSL 3.0, TLS 1.0, TLS 1.1 and DTLS 1.0, which are refused on purpose.
        """
        self._native.set_min_proto_version(version)

    def set_max_proto_version(self, version: int) -> None:
        """Sets the highest protocol version the context negotiates.

        :param version: ``TLS1_2_VERSION`` or ``TLS1_3_VERSION`` (``0`` for the highest supported);
            for DTLS, ``DTLS1_2_VERSION`` (no DTLS 1.3) or ``DTLS1_3_VERSION``; ``0``, the
            default, allows both (a client offers both in one ClientHello).
        :raises Error: for a version the engine cannot speak.
        """
        self._native.set_max_proto_version(version)

    def load_verify_locations(self, cafile: typing.Any, capath: typing.Any = None) -> None:
        """Adds trusted CA certificates from a PEM file and/or a hashed directory.

        :param cafile: path (str, bytes or os.PathLike) of a PEM bundle, or None.
        :param capath: path of a directory of ``<hash>.0`` files, or None.
        :raises TypeError: if a path has another type.
        :raises Error: if a file cannot be read or holds no certificate.
        """
        self._native.load_verify_locations(
            cafile,
            capath,
        )

    def set_passwd_cb(self, callback: typing.Callable[[int, bool, typing.Any], bytes], userdata: typing.Any = None) -> None:
        """Sets the callback that supplies the passphrase of encrypted private keys.

        :param callback: called as ``callback(maxlen, verify, userdata)``; returns bytes of at most
            ``maxlen`` bytes.
        :param userdata: passed to the callback as its third argument.
        :raises TypeError: if ``callback`` is not callable.
        An exception the callback raises comes back from the method that loaded the key.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        self._native.set_passwd_cb(lambda maxlen, verify: callback(maxlen, verify, userdata))

    def set_default_verify_paths(self) -> None:
        """Trusts the platform's default CA certificates (the system store).

        :raises Error: if the system store cannot be read.
        """
        self._native.set_default_verify_paths()

    def use_certificate_chain_file(self, certfile: typing.Any) -> None:
        """Loads the certificate chain (leaf first) from a PEM file.

        :param certfile: path (str, bytes or os.PathLike).
        :raises TypeError: for another argument type.
        :raises Error: if the file cannot be read or parsed.
        """
        self._native.use_certificate_chain_file(certfile)

    def use_certificate_file(self, certfile: typing.Any, filetype: int = FILETYPE_PEM) -> None:
        """Loads the context's certificate from a file.

        :param certfile: path (str, bytes or os.PathLike).
        :param filetype: ``FILETYPE_PEM`` (default) or ``FILETYPE_ASN1``.
        :raises TypeError: for wrong argument types.
        :raises Error: if the file cannot be read or parsed.
        """
        if not isinstance(filetype, int):
            raise TypeError("filetype must be an integer")
        self._native.use_certificate_file(certfile, filetype)

    def use_certificate(self, cert: typing.Any) -> None:
        """Sets the context's certificate.

        :param cert: an :class:`X509` or a ``cryptography`` Certificate.
        :raises TypeError: for another type.
        :raises Error: for an X509 that was never signed.
        """
        self._native.use_certificate(_native_cert(cert))

    def add_extra_chain_cert(self, certobj: typing.Any) -> None:
        """Appends a certificate to the chain sent after the context's own certificate.

        :param certobj: an :class:`X509` or a ``cryptography`` Certificate.
        :raises TypeError: for another type.
        """
        self._native.add_extra_chain_cert(_native_cert(certobj))

    def use_privatekey_file(self, keyfile: typing.Any, filetype: int = FILETYPE_PEM) -> None:
        """Loads the context's private key from a file (encrypted PEM asks the passphrase
        callback).

        :param keyfile: path (str, bytes or os.PathLike).
        :param filetype: ``FILETYPE_PEM`` (default) or ``FILETYPE_ASN1``.
        :raises TypeError: for wrong argument types.
        :raises Error: if the file cannot be read, the passphrase is wrong or the key is unsupported.
        """
        if not isinstance(filetype, int):
            raise TypeError("filetype must be an integer")
        self._native.use_privatekey_file(keyfile, filetype)

    def use_privatekey(self, pkey: typing.Any) -> None:
        """Sets the context's private key.

        :param pkey: a :class:`PKey` holding a private key, or a ``cryptography`` private key.
        :raises TypeError: for another type or a public-only PKey.
        """
        self._native.use_privatekey(_native_key(pkey))

    def check_privatekey(self) -> None:
        """Checks that the private key matches the certificate.

        :raises Error: if they do not match or one of them is missing.
        """
        self._native.check_privatekey()

    def load_client_ca(self, cafile: typing.Any) -> None:
        """Adds the subjects of the certificates in a PEM file to the CA names a server
        sends in its CertificateRequest.

        :param cafile: path (bytes preferred; str is deprecated and warns).
        :raises Error: if the file cannot be read.
        """
        if isinstance(cafile, str):
            warnings.warn("str for cafile is no longer accepted, use bytes", DeprecationWarning, stacklevel=2)
        self._native.load_client_ca(cafile)

    def set_session_id(self, buf: bytes) -> None:
        """Sets the session id context: sessions are resumed only under the same value.

        :param buf: bytes, at most 32 (str is deprecated and warns).
        :raises TypeError: for another type.
        :raises Error: if it is longer than 32 bytes.
        """
        if isinstance(buf, str):
            warnings.warn("str for buf is no longer accepted, use bytes", DeprecationWarning, stacklevel=2)
            buf = buf.encode("utf-8")
        if not isinstance(buf, bytes):
            raise TypeError("buf must be a byte string")
        if len(buf) > 32:
            raise Error([("SSL routines", "", "ssl session id context too long")])
        self._native.set_session_id(buf)

    def set_session_cache_mode(self, mode: int) -> int:
        """Sets the session cache mode (a ``SESS_CACHE_*`` mask).

        :param mode: an int.
        :returns: the previous mode.
        :raises TypeError: if ``mode`` is not an int.
        """
        if not isinstance(mode, int):
            raise TypeError("mode must be an integer")
        return self._native.set_session_cache_mode(mode)

    def get_session_cache_mode(self) -> int:
        """The session cache mode (a ``SESS_CACHE_*`` mask)."""
        return self._native.get_session_cache_mode()

    def set_verify(self, mode: int, callback: typing.Any = None) -> None:
        """Sets how the peer's certificate is verified.

        :param mode: ``VERIFY_NONE`` or ``VERIFY_PEER`` with ``VERIFY_FAIL_IF_NO_PEER_CERT`` /
            ``VERIFY_CLIENT_ONCE``.
        :param callback: None, or ``callback(conn, cert, errnum, depth, ok) -> bool`` called for
            each certificate of the chain; its answer decides.
        :raises TypeError: if ``mode`` is not an int or ``callback`` is not callable.
        An exception the callback raises comes back from the handshake.
        """
        if not isinstance(mode, int):
            raise TypeError("mode must be an integer")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        self._verify_callback = callback
        self._native.set_verify(mode, _verify_adapter(callback))

    def set_verify_depth(self, depth: int) -> None:
        """Sets the longest certificate chain accepted.

        :param depth: an int.
        :raises TypeError: if ``depth`` is not an int.
        """
        if not isinstance(depth, int):
            raise TypeError("depth must be an integer")
        self._native.set_verify_depth(depth)

    def get_verify_mode(self) -> int:
        """The verification mode set by :meth:`set_verify`."""
        return self._native.get_verify_mode()

    def get_verify_depth(self) -> int:
        """The longest certificate chain accepted."""
        return self._native.get_verify_depth()

    def get_verify_callback(self) -> typing.Any:
        """The callback given to :meth:`set_verify`, or None."""
        return self._verify_callback

    def load_tmp_dh(self, dhfile: typing.Any) -> None:
        """Would load finite-field Diffie-Hellman parameters: refused on purpose.

        :param dhfile: a path.
        :raises TypeError: if ``dhfile`` is not a path.
        :raises Error: always; ferrossl uses ECDHE only.
        """
        os.fspath(dhfile)
        raise _not_supported("finite-field DHE; ECDHE is used")

    def set_tmp_ecdh(self, curve: typing.Any) -> None:
        """Restricts the key exchange to one elliptic curve.

        :param curve: a ``cryptography`` curve (or, deprecated, a curve of
            :func:`crypto.get_elliptic_curve`).
        :raises TypeError: for an object that is not a curve.
        :raises Error: for a curve other than X25519, P-256 and P-384.
        """
        if isinstance(curve, _EllipticCurve):
            warnings.warn("Passing pyOpenSSL elliptic curves to set_tmp_ecdh is deprecated; pass a cryptography curve", DeprecationWarning, stacklevel=2)
            name = curve.name
        else:
            curve_name = getattr(curve, "name", None)
            if not isinstance(curve_name, str):
                raise TypeError("curve must be an elliptic curve")
            name = curve_name
        self._native.set_tmp_ecdh(name)

    def set_cipher_list(self, cipher_list: bytes | str) -> None:
        """Sets the TLS 1.2 cipher suites from an OpenSSL cipher string.

        :param cipher_list: bytes or str, e.g. ``b"ECDHE+AESGCM"``.
        :raises TypeError: for another type.
        :raises Error: if the string selects no suite the engine offers.
        """
        if isinstance(cipher_list, bytes):
            cipher_list = cipher_list.decode("ascii")
        if not isinstance(cipher_list, str):
            raise TypeError("cipher_list must be a byte string.")
        self._native.set_cipher_list(cipher_list)

    def set_tls13_ciphersuites(self, ciphersuites: bytes) -> None:
        """Sets the TLS 1.3 cipher suites.

        :param ciphersuites: bytes, colon-separated, e.g. ``b"TLS_AES_128_GCM_SHA256"``.
        :raises TypeError: if it is not bytes.
        :raises Error: if no suite is recognised.
        """
        if not isinstance(ciphersuites, bytes):
            raise TypeError("ciphersuites must be a byte string.")
        self._native.set_ciphersuites(ciphersuites.decode("ascii"))

    def set_client_ca_list(self, certificate_authorities: typing.Sequence[X509Name]) -> None:
        """Sets the CA names a server sends in its CertificateRequest.

        :param certificate_authorities: a sequence of :class:`X509Name`.
        :raises TypeError: for an element that is not an X509Name.
        """
        names = []
        for name in certificate_authorities:
            if not isinstance(name, X509Name):
                raise TypeError(f"client CAs must be X509Name objects, not {type(name).__name__} objects")
            names.append(name.der())
        self._native.set_client_ca_list(names)

    def add_client_ca(self, certificate_authority: typing.Any) -> None:
        """Adds the subject of a CA certificate to the names a server sends in its
        CertificateRequest.

        :param certificate_authority: an :class:`X509` or a ``cryptography`` Certificate.
        :raises TypeError: for another type.
        """
        self._native.add_client_ca(_native_cert(certificate_authority))

    def set_timeout(self, timeout: int) -> None:
        """Sets the lifetime of new sessions in seconds.

        :param timeout: an int.
        :raises TypeError: if it is not an int.
        """
        if not isinstance(timeout, int):
            raise TypeError("timeout must be an integer")
        self._native.set_timeout(timeout)

    def get_timeout(self) -> int:
        """The lifetime of new sessions in seconds."""
        return self._native.get_timeout()

    def set_info_callback(self, callback: typing.Callable[[Connection, int, int], None]) -> None:
        """Sets a callback told of handshake progress.

        :param callback: ``callback(conn, where, ret)``; ``where`` is a ``SSL_CB_*`` mask. While it
    runs the connection is busy: calls on ``conn`` other than ``get_app_data`` and
    ``get_servername`` raise Error. An exception it raises comes back from the method
    that was running.
        """
        self._native.set_info_callback(callback)

    def set_keylog_callback(self, callback: typing.Callable[[Connection, bytes], None]) -> None:
        """Sets a callback that receives each TLS secret in NSS key log format.

        :param callback: ``callback(conn, line)``, ``line`` being bytes without a newline. An
    exception it raises comes back from the method that was running.
        """
        self._native.set_keylog_callback(callback)

    def get_app_data(self) -> typing.Any:
        """The object stored by :meth:`set_app_data` (None at first)."""
        return self._app_data

    def set_app_data(self, data: typing.Any) -> None:
        """Stores any object on the context for the application.

        :param data: any object.
        """
        self._app_data = data

    def get_cert_store(self) -> X509Store:
        """The context's trust store, as an :class:`X509Store` sharing its certificates."""
        return X509Store._from_native(self._native.get_cert_store())

    def set_options(self, options: int) -> int:
        """Adds ``OP_*`` options.

        :param options: an int mask.
        :returns: the options now set.
        :raises TypeError: if it is not an int.
        """
        if not isinstance(options, int):
            raise TypeError("options must be an integer")
        return self._native.set_options(options)

    def clear_options(self, options: int) -> int:
        """Removes ``OP_*`` options.

        :param options: an int mask.
        :returns: the options now set.
        :raises TypeError: if it is not an int.
        """
        if not isinstance(options, int):
            raise TypeError("options must be an integer")
        return self._native.clear_options(options)

    def set_mode(self, mode: int) -> int:
        """Adds ``MODE_*`` flags.

        :param mode: an int mask.
        :returns: the modes now set.
        :raises TypeError: if it is not an int.
        """
        if not isinstance(mode, int):
            raise TypeError("mode must be an integer")
        return self._native.set_mode(mode)

    def clear_mode(self, mode_to_clear: int) -> int:
        """Would remove ``MODE_*`` flags: not supported.

        :param mode_to_clear: an int mask.
        :raises Error: always.
        """
        raise _not_supported("clearing modes")

    def set_tlsext_servername_callback(self, callback: typing.Callable[[Connection], None]) -> None:
        """Sets the server's callback for the client's SNI name.

        :param callback: ``callback(conn)``; it may read ``conn.get_servername()`` and switch
            context with ``conn.set_context(other)``. An exception it raises comes back from the
            handshake.
        """
        self._native.set_tlsext_servername_callback(callback)

    def set_alpn_protos(self, protos: list[bytes]) -> None:
        """Sets the ALPN protocols a client offers, in order of preference.

        :param protos: a list of bytes, each 1 to 255 bytes long.
        :raises ValueError: for an empty list or a bad length.
        :raises TypeError: for an element that is not bytes.
        """
        self._native.set_alpn_protos(_check_alpn(protos))

    def set_alpn_select_callback(self, callback: typing.Callable[[Connection, list[bytes]], typing.Any]) -> None:
        """Sets the server's ALPN choice.

        :param callback: ``callback(conn, offered) -> bytes``; return one of ``offered``, or
            :data:`NO_OVERLAPPING_PROTOCOLS` to continue without ALPN, or ``b""`` to fail the
            handshake. Another return type raises TypeError from the handshake.
        """
        def adapter(conn: Connection, offered: list[bytes]) -> bytes | None:
            chosen = callback(conn, offered)
            if chosen is NO_OVERLAPPING_PROTOCOLS:
                return None
            if not isinstance(chosen, bytes):
                raise TypeError("ALPN callback must return a bytestring or the special NO_OVERLAPPING_PROTOCOLS sentinel value.")
            return chosen

        self._native.set_alpn_select_callback(adapter)

    def set_ocsp_server_callback(self, callback: typing.Any, data: typing.Any = None) -> None:
        """Sets the server callback that returns the OCSP response to staple.

        :param callback: ``callback(conn, data) -> bytes`` (``b""`` staples nothing).
        :param data: passed as the second argument.
        :raises TypeError: if ``callback`` is not callable.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        self._native.set_ocsp_server_callback(lambda conn: callback(conn, data))

    def set_ocsp_client_callback(self, callback: typing.Any, data: typing.Any = None) -> None:
        """Sets the client callback that judges the stapled OCSP response.

        :param callback: ``callback(conn, ocsp_bytes, data) -> bool``; false fails the handshake.
        :param data: passed as the third argument.
        :raises TypeError: if ``callback`` is not callable.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        self._native.set_ocsp_client_callback(lambda conn, resp: callback(conn, resp, data))

    def set_tlsext_use_srtp(self, profiles: bytes) -> None:
        """Offers DTLS-SRTP protection profiles (RFC 5764).

        :param profiles: bytes, colon-separated, e.g. ``b"SRTP_AES128_CM_SHA1_80"``.
        :raises TypeError: if it is not bytes.
        :raises Error: for an unknown profile.
        """
        if not isinstance(profiles, bytes):
            raise TypeError("profiles must be a byte string.")
        try:
            self._native.set_tlsext_use_srtp(profiles.decode("ascii"))
        except ValueError as e:
            raise Error([("SSL routines", "", f"error setting the SRTP profiles: {e}")]) from None

    def set_cookie_generate_callback(self, callback: typing.Callable[[Connection], bytes]) -> None:
        """Sets the DTLS server's HelloVerifyRequest cookie maker.

        :param callback: ``callback(conn) -> bytes`` of at most 255 bytes (a longer cookie raises
            ValueError from the handshake).
        """
        def generate(conn: Connection) -> bytes:
            cookie = callback(conn)
            if len(cookie) > 255:
                raise ValueError(f"Cookie too long (got {len(cookie)} bytes, max 255)")
            return cookie

        self._native.set_cookie_generate_callback(generate)

    def set_cookie_verify_callback(self, callback: typing.Callable[[Connection, bytes], bool]) -> None:
        """Sets the DTLS server's cookie check.

        :param callback: ``callback(conn, cookie) -> bool``.
        """
        self._native.set_cookie_verify_callback(callback)


def _check_alpn(protos: typing.Any) -> list[bytes]:
    protos = list(protos)
    if not protos:
        raise ValueError("at least one protocol must be specified")
    for p in protos:
        if not isinstance(p, bytes):
            raise TypeError("protocols must be bytes")
        if not p or len(p) > 255:
            raise ValueError("protocols must be 1 to 255 bytes long")
    return protos


def _verify_adapter(callback: typing.Any) -> typing.Any:
    if callback is None:
        return None

    def adapter(conn: Connection, der: bytes, errnum: int, depth: int, ok: bool) -> bool:
        cert = X509._from_native(_native.NativeX509.from_der(der))
        return bool(callback(conn, cert, errnum, depth, int(ok)))

    return adapter


# Connection's I/O methods and the native methods behind them, which take the same arguments
# and raise the same errors. Each connection holds the native ones bound in its ``__dict__``,
# so that a call costs no Python frame of ours (more than the call itself when an exception
# such as WantReadError passes through one) and no bound method built per call (Connection's
# ``__getattr__`` keeps Python from calling class methods without one). The class attributes
# must still win when they change: see _FastPathType.
_FAST_PATH = {
    "send": "send",
    "write": "send",
    "sendall": "sendall",
    "recv": "recv",
    "read": "recv",
    "bio_read": "bio_read",
    "bio_write": "bio_write",
    "pending": "pending",
    "do_handshake": "do_handshake",
}
#: The live connections holding fast-path bindings, and the lock under which they are
#: added or listed (a thread may make a connection while another patches the class).
_bound_connections: weakref.WeakSet[typing.Any] = weakref.WeakSet()
_bound_connections_lock = threading.Lock()
#: Per class, the (name, native name) pairs its new instances bind.
_fast_path_by_class: dict[type, tuple[tuple[str, str], ...]] = {}


class _FastPathType(type):
    """Connection's metaclass. Setting or deleting one of the fast-path methods on a class
    (``unittest.mock.patch("OpenSSL.SSL.Connection.do_handshake")``, a method added to a
    subclass later) drops that name's bindings from the class's live instances and from the
    ones it makes next, so that calls find the class attribute, as with pyOpenSSL."""

    def __setattr__(cls, name: str, value: typing.Any) -> None:
        super().__setattr__(name, value)
        if name in _FAST_PATH:
            _unbind(cls, name)

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        if name in _FAST_PATH:
            _unbind(cls, name)


def _unbind(cls: type, name: str) -> None:
    _fast_path_by_class.clear()
    with _bound_connections_lock:
        connections = list(_bound_connections)
    for conn in connections:
        if not isinstance(conn, cls):
            continue
        bound = conn.__dict__.get(name)
        # Only our binding: an attribute the program set on the instance itself stays.
        if getattr(bound, "__self__", None) is getattr(conn, "_native", None):
            del conn.__dict__[name]


def _fast_path(cls: type) -> tuple[tuple[str, str], ...]:
    """The fast-path methods whose class attribute on ``cls`` is still Connection's own (not
    overridden by a subclass, not patched)."""
    found = _fast_path_by_class.get(cls)
    if found is None:
        found = tuple(
            (name, native) for name, native in _FAST_PATH.items() if getattr(cls, name) is _OWN_METHODS[name]
        )
        _fast_path_by_class[cls] = found
    return found


class Connection(metaclass=_FastPathType):
    """One TLS (or DTLS) connection, over a socket or, with ``socket=None``, over memory
    BIOs (:meth:`bio_write` / :meth:`bio_read`). Unknown attributes are looked up on the
    socket.

    :param context: the :class:`Context` whose settings it takes.
    :param socket: a socket object (``recv``/``send``/``shutdown``) or None.
    :raises TypeError: if ``context`` is not a Context.
    """

    def __init__(self, context: Context, socket: typing.Any = None) -> None:
        if not isinstance(context, Context):
            raise TypeError("context must be a Context instance")
        self._context = context
        self._socket = socket
        self._app_data: typing.Any = None
        self._native = _native.NativeConnection(context._native, socket)
        self._native.set_owner(weakref.ref(self))
        self._ssl = _Handle("SSL")
        fast = _fast_path(type(self))
        if fast:
            for name, native_name in fast:
                self.__dict__[name] = getattr(self._native, native_name)
            with _bound_connections_lock:
                _bound_connections.add(self)

    def __getattr__(self, name: str) -> typing.Any:
        # Unknown attributes go to the socket, as pyOpenSSL does (fileno, settimeout...).
        if self.__dict__.get("_socket") is None:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        return getattr(self._socket, name)

    def get_context(self) -> Context:
        """The :class:`Context` the connection uses now."""
        return self._context

    def set_context(self, context: Context) -> None:
        """Switches the connection to another context (typically from the SNI callback).

        :param context: a :class:`Context`.
        :raises TypeError: for another type.
        """
        if not isinstance(context, Context):
            raise TypeError("context must be a Context instance")
        self._native.set_context(context._native)
        self._context = context

    def get_servername(self) -> bytes | None:
        """The SNI host name: the one the client sent (server side) or set (client side),
        as bytes, or None.
        """
        name = self._native.get_servername()
        return None if name is None else name.encode("ascii")

    def set_verify(self, mode: int, callback: typing.Any = None) -> None:
        """Overrides the context's verification for this connection; see
        :meth:`Context.set_verify`.

        :raises TypeError: if ``mode`` is not an int or ``callback`` is not callable.
        """
        if not isinstance(mode, int):
            raise TypeError("mode must be an integer")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        self._native.set_verify(mode, _verify_adapter(callback))

    def get_verify_mode(self) -> int:
        """The verification mode in force for this connection."""
        return self._native.get_verify_mode()

    def use_certificate(self, cert: typing.Any) -> None:
        """Sets this connection's certificate, overriding the context's.

        :param cert: an :class:`X509` or a ``cryptography`` Certificate.
        :raises TypeError: for another type.
        """
        self._native.use_certificate(_native_cert(cert))

    def use_privatekey(self, pkey: typing.Any) -> None:
        """Sets this connection's private key, overriding the context's.

        :param pkey: a :class:`PKey` or a ``cryptography`` private key.
        :raises TypeError: for another type.
        """
        self._native.use_privatekey(_native_key(pkey))

    def set_options(self, options: int) -> int:
        """Adds ``OP_*`` options for this connection.

        :param options: an int mask.
        :returns: the options now set.
        :raises TypeError: if it is not an int.
        """
        if not isinstance(options, int):
            raise TypeError("options must be an integer")
        return self._native.set_options(options)

    def set_info_callback(self, callback: typing.Callable[[Connection, int, int], None]) -> None:
        """Sets this connection's progress callback; see :meth:`Context.set_info_callback`."""
        self._native.set_info_callback(callback)

    def set_ciphertext_mtu(self, mtu: int) -> None:
        """Sets the largest DTLS datagram the connection writes.

        :param mtu: bytes per datagram, an int.
        :raises Error: on a TLS connection or for an MTU too small to carry a record.
        """
        self._native.set_ciphertext_mtu(mtu)

    def get_cleartext_mtu(self) -> int:
        """The most application data one DTLS datagram carries under the current MTU.

        :raises Error: on a TLS connection.
        """
        return self._native.get_cleartext_mtu()

    def set_tlsext_host_name(self, name: bytes) -> None:
        """Sets the SNI host name a client sends (and checks the certificate against when
        ``set_check_hostname`` is on).

        :param name: an ASCII host name as bytes.
        :raises TypeError: if it is not bytes or contains a NUL byte.
        :raises ValueError: for an IP address or an invalid name.
        """
        if not isinstance(name, bytes):
            raise TypeError("name must be a byte string")
        if b"\0" in name:
            raise TypeError("name must not contain NUL byte")
        self._native.set_tlsext_host_name(name.decode("ascii"))

    def pending(self) -> int:
        """How many decrypted bytes :meth:`recv` can return without reading more."""
        return self._native.pending()

    def send(self, buf: typing.Any, flags: int = 0) -> int:
        """Encrypts and sends data; returns how many bytes were taken: at most one record's
        worth (16384 bytes), as pyOpenSSL's contexts enable partial writes.

        :param buf: bytes, bytearray, memoryview or another buffer (str is deprecated and warns).
        :param flags: ignored (an int, as socket.send takes).
        :raises TypeError: for a non-buffer or non-int flags.
        :raises ValueError: for more than 2**31-1 bytes at once.
        :raises WantWriteError: if a socket cannot take more now.
        :raises Error: on a closed connection or a failed handshake.
        """
        return self._native.send(buf, flags)

    write = send

    def sendall(self, buf: typing.Any, flags: int = 0) -> int:
        """Sends all of ``buf``, as :meth:`send` called until everything is taken.

        :param buf: a buffer (str is deprecated and warns).
        :param flags: ignored.
        :returns: the number of bytes sent (all of them).
        :raises TypeError: for a non-buffer or non-int flags.
        :raises Error: as :meth:`send`.
        """
        return self._native.sendall(buf, flags)

    def recv(self, bufsiz: int, flags: int | None = None) -> bytes:
        """Reads up to ``bufsiz`` bytes of decrypted application data.

        :param bufsiz: an int >= 0.
        :param flags: ``socket.MSG_PEEK`` to leave the data in place, else None.
        :raises WantReadError: when more data from the peer is needed.
        :raises ZeroReturnError: when the peer sent close_notify.
        :raises SysCallError: when the transport ended without close_notify.
        :raises OverflowError: for a size that does not fit the platform.
        """
        return self._native.recv(bufsiz, flags)

    read = recv

    def recv_into(self, buffer: typing.Any, nbytes: int | None = None, flags: int | None = None) -> int:
        """Reads decrypted data into a writable buffer; returns how many bytes were written.

        :param buffer: a writable buffer (bytearray, memoryview).
        :param nbytes: at most this many bytes (default: the buffer's length).
        :param flags: as :meth:`recv`.
        :raises TypeError: for a read-only buffer.
        """
        view = memoryview(buffer)
        if view.readonly:
            raise TypeError("buffer must be writable")
        n = len(view) if nbytes is None else min(nbytes, len(view))
        data = self.recv(n, flags)
        view[: len(data)] = data
        return len(data)

    def bio_read(self, bufsiz: int) -> bytes:
        """Takes up to ``bufsiz`` bytes of ciphertext to send to the peer (memory mode).

        :param bufsiz: an int.
        :raises TypeError: on a socket connection or a non-int size.
        :raises WantReadError: if there is nothing to send.
        """
        return self._native.bio_read(bufsiz)

    def bio_write(self, buf: typing.Any) -> int:
        """Hands ciphertext received from the peer to the connection (memory mode).

        :param buf: a buffer.
        :returns: how many bytes were taken.
        :raises TypeError: on a socket connection or a non-buffer.
        """
        return self._native.bio_write(buf)

    def bio_shutdown(self) -> None:
        """Tells the connection that the peer's transport ended (memory mode): later reads
        raise SysCallError(-1, "Unexpected EOF") unless close_notify came first.

        :raises TypeError: on a socket connection.
        """
        if self._socket is not None:
            raise TypeError("Connection sock was not None")
        self._native.bio_shutdown()

    def renegotiate(self) -> bool:
        """Renegotiation is refused on purpose: always False (nothing is started)."""
        return False

    def renegotiate_pending(self) -> bool:
        """Always False: no renegotiation is ever pending."""
        return False

    def total_renegotiations(self) -> int:
        """Always 0: renegotiation is refused on purpose."""
        return 0

    def do_handshake(self) -> None:
        """Runs the handshake as far as the available data allows.

        :raises WantReadError: when more data from the peer is needed.
        :raises WantWriteError: when a socket cannot take more now.
        :raises Error: if no role was set or the handshake failed (with OpenSSL-style reasons).
        An exception raised in a callback during the handshake is raised here instead.
        """
        self._native.do_handshake()

    def connect(self, addr: typing.Any) -> None:
        """Connects the underlying socket and sets the client role.

        :param addr: the address, as ``socket.connect`` takes it.
        :raises OSError: if the connection fails.
        """
        self._native.set_connect_state()
        self._socket.connect(addr)

    def connect_ex(self, addr: typing.Any) -> int:
        """As :meth:`connect`, but returns the socket's error number instead of raising."""
        self._native.set_connect_state()
        return self._socket.connect_ex(addr)

    def accept(self) -> tuple[Connection, typing.Any]:
        """Accepts a connection on the underlying listening socket.

        :returns: ``(Connection, address)``, the new connection in the server role with this
            connection's context.
        """
        client, addr = self._socket.accept()
        conn = Connection(self._context, client)
        conn.set_accept_state()
        return conn, addr

    def DTLSv1_listen(self) -> None:
        """Waits for a ClientHello with a valid cookie (DTLS server, memory mode).

        :raises WantReadError: until one arrives.
        :raises Error: on a TLS connection.
        """
        self._native.dtls_listen()

    def DTLSv1_get_timeout(self) -> float | None:
        """Seconds until the DTLS retransmission timer fires, or None when none runs."""
        return self._native.dtls_get_timeout()

    def DTLSv1_handle_timeout(self) -> bool:
        """Retransmits if the DTLS timer expired; True when something was sent."""
        return self._native.dtls_handle_timeout()

    def shutdown(self) -> bool:
        """Sends close_notify.

        :returns: True once the peer's close_notify has also been received, else False.
        :raises Error: on a failure of the transport.
        """
        return self._native.shutdown()

    def get_cipher_list(self) -> list[str]:
        """The names of the cipher suites the connection may use, as OpenSSL names them."""
        return self._context._native.get_cipher_list()

    def get_client_ca_list(self, *, as_cryptography: bool = False) -> typing.Any:
        """The CA names of the CertificateRequest: a server gets the names it sends, a
        client the names it received.

        :param as_cryptography: return ``cryptography`` Names instead of :class:`X509Name`.
        """
        ders = self._native.get_client_ca_list()
        if as_cryptography:
            from cryptography import x509

            return [_load_der_name(x509, der) for der in ders]
        return [X509Name._from_entries(_native.name_entries(der), der) for der in ders]

    def makefile(self, *args: typing.Any, **kwargs: typing.Any) -> typing.NoReturn:
        """Not available: raises NotImplementedError, as pyOpenSSL does."""
        raise NotImplementedError("Cannot make file object of OpenSSL.SSL.Connection")

    def get_app_data(self) -> typing.Any:
        """The object stored by :meth:`set_app_data` (None at first)."""
        return self._app_data

    def set_app_data(self, data: typing.Any) -> None:
        """Stores any object on the connection for the application."""
        self._app_data = data

    def get_shutdown(self) -> int:
        """The shutdown state: a mask of ``SENT_SHUTDOWN`` and ``RECEIVED_SHUTDOWN``."""
        return self._native.get_shutdown()

    def set_shutdown(self, state: int) -> None:
        """Sets the shutdown state mask (``SENT_SHUTDOWN``, ``RECEIVED_SHUTDOWN``).

        :param state: an int.
        :raises TypeError: if it is not an int.
        """
        if not isinstance(state, int):
            raise TypeError("state must be an integer")
        self._native.set_shutdown(state)

    def get_state_string(self) -> bytes:
        """A text description of the handshake state, as bytes."""
        return self._native.get_state_string().encode()

    def server_random(self) -> bytes | None:
        """The ServerHello random (32 bytes), or None before it is known."""
        return self._native.server_random()

    def client_random(self) -> bytes | None:
        """The ClientHello random (32 bytes), or None before it is known."""
        return self._native.client_random()

    def master_key(self) -> bytes | None:
        """The TLS 1.2 master secret, or None (before the handshake, and always on TLS 1.3,
        which has none).
        """
        return self._native.master_key()

    def export_keying_material(self, label: bytes, olen: int, context: bytes | None = None) -> bytes:
        """Derives keying material from the session (RFC 5705, RFC 8446 section 7.5).

        :param label: bytes.
        :param olen: how many bytes to return.
        :param context: bytes or None.
        :raises ValueError: for more than 65535 bytes.
        :raises Error: before the handshake completes.
        """
        return self._native.export_keying_material(label, olen, context)

    def sock_shutdown(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        """Calls ``shutdown`` on the underlying socket with the given arguments."""
        return self._socket.shutdown(*args, **kwargs)

    def get_certificate(self, *, as_cryptography: bool = False) -> typing.Any:
        """This side's certificate, or None.

        :param as_cryptography: return a ``cryptography`` Certificate instead of :class:`X509`.
        """
        return _as(self._native.get_certificate(), as_cryptography)

    def get_peer_certificate(self, *, as_cryptography: bool = False) -> typing.Any:
        """The peer's leaf certificate, or None.

        :param as_cryptography: return a ``cryptography`` Certificate instead of :class:`X509`.
        """
        return _as(self._native.get_peer_certificate(), as_cryptography)

    def get_peer_cert_chain(self, *, as_cryptography: bool = False) -> typing.Any:
        """The certificates the peer sent, leaf first, or None.

        :param as_cryptography: return ``cryptography`` Certificates.
        """
        chain = self._native.get_peer_cert_chain()
        return None if chain is None else [_as(c, as_cryptography) for c in chain]

    def get_verified_chain(self, *, as_cryptography: bool = False) -> typing.Any:
        """The chain built during verification, leaf to trust anchor, or None.

        :param as_cryptography: return ``cryptography`` Certificates.
        """
        chain = self._native.get_verified_chain()
        return None if chain is None else [_as(c, as_cryptography) for c in chain]

    def want_read(self) -> bool:
        """True when the connection waits for data from the peer."""
        return self._native.want_read()

    def want_write(self) -> bool:
        """True when ciphertext waits to be sent."""
        return self._native.want_write()

    def set_accept_state(self) -> None:
        """Makes this connection the server side."""
        self._native.set_accept_state()

    def set_connect_state(self) -> None:
        """Makes this connection the client side."""
        self._native.set_connect_state()

    def get_session(self) -> Session | None:
        """The session to resume later with :meth:`set_session`, or None."""
        native = self._native.get_session()
        if native is None:
            return None
        session = Session.__new__(Session)
        session._native = native
        session._context = self._context
        return session

    def set_session(self, session: Session) -> None:
        """Offers a session from an earlier connection for resumption (before the handshake).

        :param session: a :class:`Session` from :meth:`get_session`.
        :raises TypeError: for another type.
        :raises ValueError: for a session from a different context.
        """
        if not isinstance(session, Session):
            raise TypeError("session must be a Session instance")
        if getattr(session, "_context", None) not in (None, self._context):
            raise ValueError("session was created for a different context")
        self._native.set_session(session._native)

    def session_reused(self) -> bool:
        """True when the handshake resumed a session."""
        return self._native.session_reused()

    def get_finished(self) -> bytes | None:
        """None before the handshake; afterwards the engine cannot give it (an Error)."""
        if not self._native.is_handshake_done():
            return None
        raise _not_supported("the engine does not expose Finished messages")

    def get_peer_finished(self) -> bytes | None:
        """None before the handshake; afterwards the engine cannot give it (an Error)."""
        if not self._native.is_handshake_done():
            return None
        raise _not_supported("the engine does not expose Finished messages")

    def get_cipher_name(self) -> str | None:
        """The negotiated cipher suite's OpenSSL name, or None."""
        return self._native.get_cipher_name()

    def get_cipher_bits(self) -> int | None:
        """The negotiated cipher's secret key bits, or None."""
        return self._native.get_cipher_bits()

    def get_cipher_version(self) -> str | None:
        """The protocol version that defined the negotiated suite ("TLSv1.2", "TLSv1.3"),
        or None.
        """
        return self._native.get_cipher_version()

    def get_protocol_version_name(self) -> str:
        """The negotiated version as text ("TLSv1.3"; "DTLSv1.2", "DTLSv1.3" for DTLS), or
        "Unknown" before."""
        return self._native.get_protocol_version_name()

    def get_protocol_version(self) -> int:
        """The negotiated version as a number (``TLS1_3_VERSION``, ``DTLS1_3_VERSION``...), 0
        before."""
        return self._native.get_protocol_version()

    def set_alpn_protos(self, protos: list[bytes]) -> None:
        """Sets the ALPN protocols this client offers; see :meth:`Context.set_alpn_protos`."""
        self._native.set_alpn_protos(_check_alpn(protos))

    def get_alpn_proto_negotiated(self) -> bytes:
        """The negotiated ALPN protocol, or b"" when none was."""
        return self._native.get_alpn_proto_negotiated()

    def get_selected_srtp_profile(self) -> bytes:
        """The negotiated DTLS-SRTP profile name, or b""."""
        profile = self._native.get_selected_srtp_profile()
        return b"" if profile is None else profile.encode("ascii")

    def get_group_name(self) -> str | None:
        """The key exchange group's name (e.g. "X25519MLKEM768"), or None."""
        return self._native.get_group_name()

    def request_ocsp(self) -> None:
        """Asks the server for a stapled OCSP response (client, before the handshake)."""
        self._native.request_ocsp()


#: Connection's own fast-path methods, as defined (before anything patches them).
_OWN_METHODS = {name: Connection.__dict__[name] for name in _FAST_PATH}


def _load_der_name(x509: typing.Any, der: bytes) -> typing.Any:
    from .crypto import _ATTRIBUTE_OIDS

    return x509.Name(
        [
            x509.NameAttribute(x509.ObjectIdentifier(_ATTRIBUTE_OIDS.get(k, k)), v)
            for k, v in _native.name_entries(der)
        ]
    )


def _as(native: typing.Any, as_cryptography: bool) -> typing.Any:
    if native is None:
        return None
    cert = X509._from_native(native)
    return cert.to_cryptography() if as_cryptography else cert
