"""DTLS 1.2, and DTLS 1.3 on request, over UDP with GIO's ``GDtlsConnection`` API.

``DtlsClientConnection.new(sock, "host")`` and ``DtlsServerConnection.new(sock, certificate)``
wrap a Python ``socket.socket`` of type ``SOCK_DGRAM`` (connected, or given a
``peer_address``) and offer GIO's methods and properties under GIO's names: ``handshake``,
``send_messages``/``receive_messages`` with a timeout and a :class:`Cancellable`, ``close``,
``shutdown``, the ``accept-certificate`` signal with :class:`TlsCertificateFlags`, ALPN,
channel binding, a :class:`TlsInteraction` for the password of an encrypted key, DTLS-SRTP
and keying-material export, ``set_protocol_versions`` (DTLS 1.3 and 1.2 by default), and ``*_async``
coroutines for asyncio. :class:`DtlsServer` serves many clients on one UDP socket, handing out
a :class:`DtlsServerConnection` for each.

Everything runs in ``ferrossl::gio::DtlsConnection`` (Rust), with the GIL released while it
waits or computes. Errors are :class:`GioError` subclasses carrying GIO's error domain and
code (see :func:`_error` for the mapping). The base socket is never closed by the connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import errno as _errno
import os
import socket
import threading
import typing
import weakref

from . import _native, crypto

__all__ = [
    "BadCertificate",
    "BadCertificatePassword",
    "Cancellable",
    "Cancelled",
    "CertificateRequired",
    "ChannelBindingError",
    "Closed",
    "DtlsClientConnection",
    "DtlsConnection",
    "DtlsServer",
    "DtlsServerConnection",
    "Eof",
    "GioError",
    "IOErrorEnum",
    "NotSupported",
    "ServerLimits",
    "ServerStats",
    "TimedOut",
    "TlsAuthenticationMode",
    "TlsCertificate",
    "TlsCertificateFlags",
    "TlsChannelBindingError",
    "TlsChannelBindingType",
    "TlsError",
    "TlsErrorEnum",
    "TlsInteraction",
    "TlsInteractionResult",
    "TlsPassword",
    "TlsPasswordFlags",
    "TlsProtocolVersion",
    "TlsRehandshakeMode",
    "TransportError",
    "WouldBlock",
]


# --- GIO's enumerations, with GIO's values ------------------------------------------------


class TlsCertificateFlags(enum.IntFlag):
    """``GTlsCertificateFlags``: the problems found with a peer certificate."""

    NO_FLAGS = 0
    UNKNOWN_CA = 1 << 0
    BAD_IDENTITY = 1 << 1
    NOT_ACTIVATED = 1 << 2
    EXPIRED = 1 << 3
    REVOKED = 1 << 4
    INSECURE = 1 << 5
    GENERIC_ERROR = 1 << 6
    VALIDATE_ALL = 0x7F


class TlsAuthenticationMode(enum.IntEnum):
    """``GTlsAuthenticationMode``: whether a server asks for a client certificate."""

    NONE = 0
    REQUESTED = 1
    REQUIRED = 2


class TlsProtocolVersion(enum.IntEnum):
    """``GTlsProtocolVersion``; a DTLS connection reports ``UNKNOWN``, ``DTLS_1_2`` or
    ``DTLS_1_3``. ``DTLS_1_3`` (203) is a ferrossl addition: GIO's enumeration ends at
    ``DTLS_1_2`` (a GIO backend reports a version GIO does not know as ``UNKNOWN``)."""

    UNKNOWN = 0
    SSL_3_0 = 1
    TLS_1_0 = 2
    TLS_1_1 = 3
    TLS_1_2 = 4
    TLS_1_3 = 5
    DTLS_1_0 = 201
    DTLS_1_2 = 202
    DTLS_1_3 = 203


class TlsChannelBindingType(enum.IntEnum):
    """``GTlsChannelBindingType``: RFC 5929 tls-unique and tls-server-end-point, RFC 9266
    tls-exporter."""

    UNIQUE = 0
    SERVER_END_POINT = 1
    EXPORTER = 2


class TlsRehandshakeMode(enum.IntEnum):
    """``GTlsRehandshakeMode``, kept for API compatibility: GIO ignores it (since 2.64), so
    does ferrossl (DTLS renegotiation is refused)."""

    NEVER = 0
    SAFELY = 1
    UNSAFELY = 2


class TlsInteractionResult(enum.IntEnum):
    """``GTlsInteractionResult``: what :meth:`TlsInteraction.ask_password` did."""

    UNHANDLED = 0
    HANDLED = 1
    FAILED = 2


class TlsPasswordFlags(enum.IntFlag):
    """``GTlsPasswordFlags``: the situation a :class:`TlsPassword` is asked in (GIO's values;
    ferrossl sets ``RETRY`` and ``FINAL_TRY``)."""

    NONE = 0
    RETRY = 1 << 1
    MANY_TRIES = 1 << 2
    FINAL_TRY = 1 << 3
    PKCS11_USER = 1 << 4
    PKCS11_SECURITY_OFFICER = 1 << 5
    PKCS11_CONTEXT_SPECIFIC = 1 << 6


class IOErrorEnum(enum.IntEnum):
    """``GIOErrorEnum``: the codes of the ``g-io-error-quark`` domain that DTLS calls raise
    (GIO's values)."""

    FAILED = 0
    INVALID_ARGUMENT = 13
    PERMISSION_DENIED = 14
    NOT_SUPPORTED = 15
    CLOSED = 18
    CANCELLED = 19
    TIMED_OUT = 24
    WOULD_BLOCK = 27
    HOST_NOT_FOUND = 28
    ADDRESS_IN_USE = 33
    HOST_UNREACHABLE = 37
    NETWORK_UNREACHABLE = 38
    CONNECTION_REFUSED = 39
    BROKEN_PIPE = 44
    NOT_CONNECTED = 45
    MESSAGE_TOO_LARGE = 46


class TlsErrorEnum(enum.IntEnum):
    """``GTlsError``: the codes of the ``g-tls-error-quark`` domain (GIO's values)."""

    UNAVAILABLE = 0
    MISC = 1
    BAD_CERTIFICATE = 2
    NOT_TLS = 3
    HANDSHAKE = 4
    CERTIFICATE_REQUIRED = 5
    EOF = 6
    INAPPROPRIATE_FALLBACK = 7
    BAD_CERTIFICATE_PASSWORD = 8


class TlsChannelBindingError(enum.IntEnum):
    """``GTlsChannelBindingError``: why channel binding data is not available."""

    NOT_IMPLEMENTED = 0
    INVALID_STATE = 1
    NOT_AVAILABLE = 2
    NOT_SUPPORTED = 3
    GENERAL_ERROR = 4


# --- Errors ---------------------------------------------------------------------------------


class GioError(Exception):
    """A failed DTLS call, as GIO's ``GError``: ``domain`` (GIO's quark name), ``code`` (an
    enumeration of that domain) and ``message``."""

    domain = "g-io-error-quark"
    default_code: int = IOErrorEnum.FAILED

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.default_code if code is None else code


class Closed(GioError):
    """The connection was closed, or this direction shut down (``G_IO_ERROR_CLOSED``)."""

    default_code = IOErrorEnum.CLOSED


class Cancelled(GioError):
    """The call's :class:`Cancellable` was triggered (``G_IO_ERROR_CANCELLED``)."""

    default_code = IOErrorEnum.CANCELLED


class TimedOut(GioError, TimeoutError):
    """The call's timeout passed (``G_IO_ERROR_TIMED_OUT``); also a ``TimeoutError``."""

    default_code = IOErrorEnum.TIMED_OUT


class WouldBlock(GioError, BlockingIOError):
    """A non-blocking call (timeout 0) could do nothing now (``G_IO_ERROR_WOULD_BLOCK``);
    also a ``BlockingIOError``."""

    default_code = IOErrorEnum.WOULD_BLOCK


class NotSupported(GioError):
    """The operation is not supported (``G_IO_ERROR_NOT_SUPPORTED``)."""

    default_code = IOErrorEnum.NOT_SUPPORTED


class TransportError(GioError):
    """The base socket failed; ``errno`` is the OS error number (or None) and ``code`` GIO's
    reading of it (``g_io_error_from_errno``)."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message, _ERRNO_CODES.get(errno or 0, IOErrorEnum.FAILED))
        self.errno = errno


class TlsError(GioError):
    """A DTLS failure (``g-tls-error-quark``); ``code`` is a :class:`TlsErrorEnum`:
    ``HANDSHAKE`` when :meth:`DtlsConnection.handshake` failed, ``MISC`` otherwise (also for a
    handshake run by the first send or receive)."""

    domain = "g-tls-error-quark"
    default_code = TlsErrorEnum.MISC


class Eof(TlsError):
    """The peer went away without close_notify while one is required (``G_TLS_ERROR_EOF``)."""

    default_code = TlsErrorEnum.EOF


class CertificateRequired(TlsError):
    """The server requires a client certificate (``G_TLS_ERROR_CERTIFICATE_REQUIRED``)."""

    default_code = TlsErrorEnum.CERTIFICATE_REQUIRED


class BadCertificate(TlsError):
    """The peer's certificate was refused (``G_TLS_ERROR_BAD_CERTIFICATE``); ``flags`` holds
    the problems found (:class:`TlsCertificateFlags`)."""

    default_code = TlsErrorEnum.BAD_CERTIFICATE

    def __init__(self, message: str, flags: int = 0) -> None:
        super().__init__(message)
        self.flags = TlsCertificateFlags(flags)


class BadCertificatePassword(TlsError):
    """An encrypted private key could not be opened: no interaction gave its password, or
    every try was wrong (``G_TLS_ERROR_BAD_CERTIFICATE_PASSWORD``)."""

    default_code = TlsErrorEnum.BAD_CERTIFICATE_PASSWORD


class ChannelBindingError(GioError):
    """Channel binding data is not available (``g-tls-channel-binding-error-quark``);
    ``code`` is a :class:`TlsChannelBindingError`."""

    domain = "g-tls-channel-binding-error-quark"
    default_code = TlsChannelBindingError.GENERAL_ERROR


_ERRNO_CODES = {
    _errno.EACCES: IOErrorEnum.PERMISSION_DENIED,
    _errno.EPERM: IOErrorEnum.PERMISSION_DENIED,
    _errno.EINVAL: IOErrorEnum.INVALID_ARGUMENT,
    _errno.EADDRINUSE: IOErrorEnum.ADDRESS_IN_USE,
    _errno.EHOSTUNREACH: IOErrorEnum.HOST_UNREACHABLE,
    _errno.ENETUNREACH: IOErrorEnum.NETWORK_UNREACHABLE,
    _errno.ECONNREFUSED: IOErrorEnum.CONNECTION_REFUSED,
    _errno.EPIPE: IOErrorEnum.BROKEN_PIPE,
    _errno.ENOTCONN: IOErrorEnum.NOT_CONNECTED,
    _errno.EMSGSIZE: IOErrorEnum.MESSAGE_TOO_LARGE,
}

_KINDS: dict[str, typing.Callable[[str, int], GioError]] = {
    "closed": lambda m, _: Closed(m),
    "cancelled": lambda m, _: Cancelled(m),
    "timed-out": lambda m, _: TimedOut(m),
    "would-block": lambda m, _: WouldBlock(m),
    "not-supported": lambda m, _: NotSupported(m),
    "eof": lambda m, _: Eof(m),
    "certificate-required": lambda m, _: CertificateRequired(m),
    "bad-certificate": lambda m, flags: BadCertificate(m, flags),
    "bad-password": lambda m, _: BadCertificatePassword(m),
    "handshake": lambda m, _: TlsError(m, TlsErrorEnum.HANDSHAKE),
    "tls": lambda m, _: TlsError(m, TlsErrorEnum.MISC),
    "io": lambda m, errno: TransportError(m, errno or None),
    "binding-invalid-state": lambda m, _: ChannelBindingError(m, TlsChannelBindingError.INVALID_STATE),
    "binding-not-supported": lambda m, _: ChannelBindingError(m, TlsChannelBindingError.NOT_SUPPORTED),
    "binding-not-available": lambda m, _: ChannelBindingError(m, TlsChannelBindingError.NOT_AVAILABLE),
    "binding-general-error": lambda m, _: ChannelBindingError(m, TlsChannelBindingError.GENERAL_ERROR),
}


def _error(kind: str, message: str, detail: int) -> GioError:
    """The exception for a ``gio::GioError`` (called by the native module). The mapping:

    ========================= =====================================================
    ``GioError`` (Rust)       Python exception (domain, code)
    ========================= =====================================================
    ``Closed``                :class:`Closed` (IO, ``CLOSED``)
    ``Cancelled``             :class:`Cancelled` (IO, ``CANCELLED``)
    ``TimedOut``              :class:`TimedOut` (IO, ``TIMED_OUT``)
    ``WouldBlock``            :class:`WouldBlock` (IO, ``WOULD_BLOCK``)
    ``Eof``                   :class:`Eof` (TLS, ``EOF``)
    ``CertificateRequired``   :class:`CertificateRequired` (TLS, ``CERTIFICATE_REQUIRED``)
    ``BadCertificate(flags)`` :class:`BadCertificate` (TLS, ``BAD_CERTIFICATE``), ``.flags``
    ``Tls(BadPassphrase)``    :class:`BadCertificatePassword` (TLS,
                              ``BAD_CERTIFICATE_PASSWORD``)
    ``Tls(NotSupported)``     :class:`NotSupported` (IO, ``NOT_SUPPORTED``)
    ``Tls(..)``               :class:`TlsError` (TLS, ``HANDSHAKE`` from ``handshake()``,
                              else ``MISC``)
    ``Io(e)``                 :class:`TransportError` (IO, from errno), ``.errno``
    ========================= =====================================================

    An exception raised by the socket itself (other than ``OSError``), by an
    accept-certificate handler or by an interaction is raised unchanged.
    """
    return _KINDS[kind](message, detail)


# --- Cancellable ----------------------------------------------------------------------------


class Cancellable:
    """GIO's ``GCancellable``: :meth:`cancel` (from any thread) makes the blocking call given
    this object fail with :class:`Cancelled` within about 20 ms."""

    def __init__(self) -> None:
        self._native = _native.NativeCancellable()
        self._lock = threading.Lock()
        self._handlers: dict[int, tuple[typing.Callable[..., object], tuple[object, ...]]] = {}
        self._next_id = 1

    def cancel(self) -> None:
        """Triggers the cancellable and runs the connected callbacks (once; cancelling again
        does nothing)."""
        with self._lock:
            if self._native.is_cancelled():
                return
            self._native.cancel()
            handlers = list(self._handlers.values())
        for callback, data in handlers:
            callback(self, *data)

    def is_cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (since the last :meth:`reset`)."""
        return self._native.is_cancelled()

    def reset(self) -> None:
        """Untriggers the cancellable, for reuse."""
        self._native.reset()

    def set_error_if_cancelled(self) -> None:
        """Raises :class:`Cancelled` if the cancellable was triggered."""
        if self.is_cancelled():
            raise Cancelled("the operation was cancelled")

    def connect(self, callback: typing.Callable[..., object], *data: object) -> int:
        """Calls ``callback(cancellable, *data)`` when cancelled; at once (returning 0) if it
        already is. Returns the id for :meth:`disconnect`."""
        with self._lock:
            if not self._native.is_cancelled():
                handler_id = self._next_id
                self._next_id += 1
                self._handlers[handler_id] = (callback, data)
                return handler_id
        callback(self, *data)
        return 0

    def disconnect(self, handler_id: int) -> None:
        """Removes a callback added by :meth:`connect` (0 and unknown ids are ignored)."""
        with self._lock:
            self._handlers.pop(handler_id, None)


def _native_cancellable(cancellable: Cancellable | None) -> _native.NativeCancellable | None:
    if cancellable is None:
        return None
    if not isinstance(cancellable, Cancellable):
        raise TypeError("cancellable must be a ferrossl.dtls.Cancellable or None")
    return cancellable._native


# --- TlsInteraction ------------------------------------------------------------------------


class TlsPassword:
    """GIO's ``GTlsPassword``: a question for a password (``description``, ``flags``,
    ``warning``) and its answer (:meth:`set_value`)."""

    def __init__(self, flags: TlsPasswordFlags = TlsPasswordFlags.NONE, description: str = "") -> None:
        self._flags = TlsPasswordFlags(flags)
        self._description = str(description)
        self._warning = ""
        self._value: bytes | None = None

    @classmethod
    def new(cls, flags: TlsPasswordFlags, description: str) -> TlsPassword:
        """``g_tls_password_new``."""
        return cls(flags, description)

    def get_value(self) -> bytes | None:
        """The password given with :meth:`set_value`, or None."""
        return self._value

    def set_value(self, value: bytes | bytearray | str) -> None:
        """Gives the password (text is taken as UTF-8)."""
        self._value = value.encode("utf-8") if isinstance(value, str) else bytes(value)

    def get_description(self) -> str:
        """What the password is for."""
        return self._description

    def set_description(self, description: str) -> None:
        """See :meth:`get_description`."""
        self._description = str(description)

    def get_flags(self) -> TlsPasswordFlags:
        """Whether this is a retry (``RETRY``), the last try (``FINAL_TRY``)..."""
        return self._flags

    def set_flags(self, flags: TlsPasswordFlags) -> None:
        """See :meth:`get_flags`."""
        self._flags = TlsPasswordFlags(flags)

    def get_warning(self) -> str:
        """A warning to show the user with the question (empty by default)."""
        return self._warning

    def set_warning(self, warning: str) -> None:
        """See :meth:`get_warning`."""
        self._warning = str(warning)

    description = property(get_description, set_description, doc="What the password is for.")
    flags = property(get_flags, set_flags, doc="The situation of the question (TlsPasswordFlags).")
    warning = property(get_warning, set_warning, doc="A warning for the user.")

    def __repr__(self) -> str:
        return f"<TlsPassword description={self._description!r} flags={self._flags!r}>"


class TlsInteraction:
    """GIO's ``GTlsInteraction``: what a connection asks its user. Subclass it and override
    :meth:`ask_password` (or PyGObject's ``do_ask_password``), then give it to
    :meth:`DtlsConnection.set_interaction` or :meth:`DtlsServer.set_interaction`.

    ferrossl asks for the password of an encrypted private key given to
    ``set_certificate_pem``: again with ``RETRY`` while the answer is wrong, ``FINAL_TRY`` on
    the third and last try. The method runs on the thread of the call that needs it; an
    exception it raises is raised by that call."""

    def ask_password(self, password: TlsPassword, cancellable: Cancellable | None = None) -> TlsInteractionResult:
        """Answers ``password`` with :meth:`TlsPassword.set_value` and returns ``HANDLED``;
        ``UNHANDLED`` (the default) leaves the question to nobody, ``FAILED`` aborts the call
        (:class:`Cancelled`)."""
        return self.do_ask_password(password, cancellable)

    def do_ask_password(self, password: TlsPassword, cancellable: Cancellable | None = None) -> TlsInteractionResult:
        """The overridable step of :meth:`ask_password` (PyGObject's name); returns
        ``UNHANDLED``."""
        return TlsInteractionResult.UNHANDLED


def _ask_password(interaction: TlsInteraction, description: str, flags: int) -> tuple[int, bytes | None]:
    """Asks ``interaction`` (called by the native module): its result and the value given."""
    password = TlsPassword(TlsPasswordFlags(flags), description)
    result = TlsInteractionResult(interaction.ask_password(password))
    return int(result), password.get_value()


def _check_interaction(interaction: TlsInteraction | None) -> TlsInteraction | None:
    if interaction is not None and not isinstance(interaction, TlsInteraction):
        raise TypeError("interaction must be a ferrossl.dtls.TlsInteraction or None")
    return interaction


# --- TlsCertificate -------------------------------------------------------------------------


def _pem_text(data: str | bytes) -> bytes:
    return data.encode("ascii") if isinstance(data, str) else bytes(data)


def _key_block(pem: bytes) -> bytes | None:
    """The first ``-----BEGIN ... PRIVATE KEY-----`` block of a PEM text, if any."""
    start = pem.find(b"-----BEGIN ")
    while start != -1:
        header_end = pem.find(b"-----", start + 11)
        if header_end == -1:
            return None
        label = pem[start + 11 : header_end]
        if label.endswith(b"PRIVATE KEY"):
            footer = b"-----END " + label + b"-----"
            end = pem.find(footer, header_end)
            return None if end == -1 else pem[start : end + len(footer)]
        start = pem.find(b"-----BEGIN ", header_end)
    return None


def _asn1_datetime(value: bytes) -> datetime.datetime:
    return datetime.datetime.strptime(value.decode("ascii"), "%Y%m%d%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


class TlsCertificate:
    """GIO's ``GTlsCertificate``: a certificate (:class:`ferrossl.crypto.X509`) and, for our
    own identity, its private key (:class:`ferrossl.crypto.PKey`).

    Build one from objects (``TlsCertificate(x509, pkey)``), from PEM text holding the
    certificate and optionally the key (:meth:`new_from_pem`), or from files
    (:meth:`new_from_file`, :meth:`new_from_files`). A server's certificate needs its key.
    """

    def __init__(self, x509: crypto.X509, pkey: crypto.PKey | None = None) -> None:
        if not isinstance(x509, crypto.X509):
            raise TypeError("x509 must be a ferrossl.crypto.X509")
        if pkey is not None and not isinstance(pkey, crypto.PKey):
            raise TypeError("pkey must be a ferrossl.crypto.PKey or None")
        self._x509 = x509
        self._pkey = pkey

    @classmethod
    def _from_native(cls, native: _native.NativeX509) -> TlsCertificate:
        return cls(crypto.X509._from_native(native))

    @classmethod
    def new_from_pem(cls, data: str | bytes) -> TlsCertificate:
        """The first certificate of a PEM text, with the text's private key if it has one."""
        pem = _pem_text(data)
        x509 = crypto.load_certificate(crypto.FILETYPE_PEM, pem)
        key = _key_block(pem)
        return cls(x509, crypto.load_privatekey(crypto.FILETYPE_PEM, key) if key else None)

    @classmethod
    def new_from_file(cls, file: str | os.PathLike[str]) -> TlsCertificate:
        """:meth:`new_from_pem` on a file's contents."""
        with open(file, "rb") as f:
            return cls.new_from_pem(f.read())

    @classmethod
    def new_from_files(cls, cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]) -> TlsCertificate:
        """The certificate of one PEM file and the private key of another."""
        with open(cert_file, "rb") as f:
            x509 = crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
        with open(key_file, "rb") as f:
            key = _key_block(f.read())
        if key is None:
            raise ValueError(f"no private key in {os.fspath(key_file)!r}")
        return cls(x509, crypto.load_privatekey(crypto.FILETYPE_PEM, key))

    @property
    def x509(self) -> crypto.X509:
        """The certificate as a :class:`ferrossl.crypto.X509`."""
        return self._x509

    @property
    def pkey(self) -> crypto.PKey | None:
        """The private key, or None."""
        return self._pkey

    @property
    def certificate(self) -> bytes:
        """The certificate's DER (GIO's ``certificate`` property)."""
        return crypto.dump_certificate(crypto.FILETYPE_ASN1, self._x509)

    @property
    def certificate_pem(self) -> str:
        """The certificate as PEM text."""
        return crypto.dump_certificate(crypto.FILETYPE_PEM, self._x509).decode("ascii")

    @property
    def private_key(self) -> bytes | None:
        """The private key's PKCS#8 DER, or None."""
        return None if self._pkey is None else crypto.dump_privatekey(crypto.FILETYPE_ASN1, self._pkey)

    @property
    def private_key_pem(self) -> str | None:
        """The private key as PEM text, or None."""
        return None if self._pkey is None else crypto.dump_privatekey(crypto.FILETYPE_PEM, self._pkey).decode("ascii")

    @property
    def subject_name(self) -> str:
        """The subject as an RFC 4514 string (e.g. ``CN=localhost``)."""
        return _rfc4514(self._x509.get_subject())

    @property
    def issuer_name(self) -> str:
        """The issuer as an RFC 4514 string."""
        return _rfc4514(self._x509.get_issuer())

    @property
    def not_valid_before(self) -> datetime.datetime:
        """The start of the validity period (UTC)."""
        return _asn1_datetime(typing.cast(bytes, self._x509.get_notBefore()))

    @property
    def not_valid_after(self) -> datetime.datetime:
        """The end of the validity period (UTC)."""
        return _asn1_datetime(typing.cast(bytes, self._x509.get_notAfter()))

    def is_same(self, other: TlsCertificate) -> bool:
        """Whether both hold the same certificate (keys are not compared, as in GIO)."""
        return isinstance(other, TlsCertificate) and self.certificate == other.certificate

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TlsCertificate) and self.is_same(other)

    def __hash__(self) -> int:
        return hash(self.certificate)

    def __repr__(self) -> str:
        return f"<TlsCertificate subject={self.subject_name!r}>"


def _rfc4514(name: crypto.X509Name) -> str:
    return ",".join(f"{k.decode()}={v.decode()}" for k, v in reversed(name.get_components()))


# --- DtlsConnection -------------------------------------------------------------------------


def _check_socket(sock: socket.socket, peer_address: typing.Any) -> tuple[typing.Any, ...] | None:
    """Checks the base socket; returns the peer address resolved for ``sendto``."""
    if not isinstance(sock, socket.socket):
        raise TypeError("base_socket must be a socket.socket")
    if sock.type != socket.SOCK_DGRAM:
        raise ValueError("base_socket must be a SOCK_DGRAM socket")
    if peer_address is None:
        try:
            sock.getpeername()
        except OSError:
            raise ValueError("base_socket is not connected: connect it or give peer_address") from None
        return None
    host, port = peer_address[0], peer_address[1]
    infos = socket.getaddrinfo(host, port, sock.family, socket.SOCK_DGRAM)
    return tuple(infos[0][4])


def _emitter(conn: DtlsConnection) -> typing.Callable[[_native.NativeX509, int], bool]:
    """The native accept-certificate handler; holds the connection weakly (no cycle through
    the native object)."""
    ref = weakref.ref(conn)

    def emit(native_cert: _native.NativeX509, flags: int) -> bool:
        c = ref()
        return c is not None and c.emit_accept_certificate(
            TlsCertificate._from_native(native_cert), TlsCertificateFlags(flags)
        )

    return emit


_T = typing.TypeVar("_T")

_UNSET: typing.Any = object()


async def _in_executor(call: typing.Callable[[Cancellable], _T], cancellable: Cancellable | None) -> _T:
    """Runs ``call`` in the loop's default executor with a Cancellable of its own, triggered
    by ``cancellable`` or by the task's cancellation (which then waits for the call to stop
    before propagating)."""
    inner = Cancellable()
    link = cancellable.connect(lambda _c: inner.cancel()) if cancellable is not None else 0
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, call, inner)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        inner.cancel()
        await asyncio.wait([future])
        raise
    finally:
        if cancellable is not None:
            cancellable.disconnect(link)


def _dtls_version(version: TlsProtocolVersion) -> TlsProtocolVersion:
    """``version`` as a :class:`TlsProtocolVersion` (``ValueError`` for another number)."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError("a protocol version must be a TlsProtocolVersion")
    return TlsProtocolVersion(version)


def _srtp_list(profiles: str | typing.Sequence[str] | None) -> str | None:
    """The profiles as the engine takes them: names joined with ``:``."""
    if profiles is None or isinstance(profiles, str):
        return profiles
    return ":".join(str(p) for p in profiles)


class DtlsConnection:
    """GIO's ``GDtlsConnection``: DTLS 1.2 (or 1.3, see :meth:`set_protocol_versions`) over a
    datagram socket, client or server (see :class:`DtlsClientConnection`,
    :class:`DtlsServerConnection`).

    One call runs at a time; a second thread's call waits for it (with the GIL released), so
    stop a blocked call with its :class:`Cancellable`. The connection may not be used from
    inside its own accept-certificate handler (:class:`TlsError`). Settings take effect at the
    handshake, which the first send or receive runs if :meth:`handshake` was not called.
    ``with conn:`` closes it on exit.
    """

    def __init__(self, native: _native.NativeDtlsConnection, base_socket: socket.socket | None) -> None:
        self._native = native
        self._base_socket = base_socket
        self._interaction: TlsInteraction | None = None
        self._certificate: TlsCertificate | None = None
        self._database: typing.Any = _UNSET
        self._advertised: list[str] | None = None
        self._handlers: dict[int, tuple[typing.Callable[..., object], tuple[object, ...]]] = {}
        self._next_handler = 1
        self._accept_handler: typing.Callable[[TlsCertificate, TlsCertificateFlags], object] | None = None
        self._protocol_versions = (TlsProtocolVersion.UNKNOWN, TlsProtocolVersion.UNKNOWN)
        native.set_accept_certificate_handler(_emitter(self))

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- I/O --

    def handshake(self, cancellable: Cancellable | None = None, timeout: float | None = None) -> bool:
        """Runs the handshake (optional: the first send or receive runs it); does nothing once
        it is done. The accept-certificate signal may be emitted during it. Returns True;
        failures raise (:class:`BadCertificate`, :class:`TlsError` with ``HANDSHAKE``...).
        ``timeout`` (a ferrossl addition) bounds it as in :meth:`send_messages`."""
        self._native.handshake(_native_cancellable(cancellable), timeout)
        return True

    def send_messages(
        self,
        messages: typing.Sequence[bytes | bytearray],
        timeout: float | None = None,
        cancellable: Cancellable | None = None,
    ) -> int:
        """Sends each message (bytes or bytearray) as one DTLS record; returns how many were
        sent. ``timeout``: None blocks, 0 raises :class:`WouldBlock` rather than wait, seconds
        raise :class:`TimedOut` at the deadline (negative or NaN: ``ValueError``)."""
        return self._native.send_messages(list(messages), timeout, _native_cancellable(cancellable))

    def receive_messages(
        self,
        num_messages: int,
        timeout: float | None = None,
        cancellable: Cancellable | None = None,
    ) -> list[bytes]:
        """Receives up to ``num_messages`` datagrams (at most 1024 a call): waits (per
        ``timeout``, as in :meth:`send_messages`) for the first, takes the others only if
        already there. An empty list is the end (close_notify, or a vanished peer when
        close_notify is not required)."""
        if num_messages < 0:
            raise ValueError("num_messages must not be negative")
        return self._native.receive_messages(num_messages, timeout, _native_cancellable(cancellable))

    def send(
        self, data: bytes | bytearray, timeout: float | None = None, cancellable: Cancellable | None = None
    ) -> int:
        """Sends one datagram; returns its length."""
        self.send_messages([data], timeout, cancellable)
        return len(data)

    def receive(self, timeout: float | None = None, cancellable: Cancellable | None = None) -> bytes:
        """Receives one datagram; ``b""`` is the end."""
        got = self.receive_messages(1, timeout, cancellable)
        return got[0] if got else b""

    def close(self, cancellable: Cancellable | None = None) -> bool:
        """Sends close_notify and closes both directions; later calls raise :class:`Closed`;
        closing again does nothing. The base socket stays open. Returns True."""
        return self.shutdown(True, True, cancellable)

    def shutdown(self, shutdown_read: bool, shutdown_write: bool, cancellable: Cancellable | None = None) -> bool:
        """Shuts down reading (receives raise :class:`Closed`) and/or writing (close_notify
        is sent; sends raise :class:`Closed`); both is :meth:`close`. Returns True."""
        self._native.shutdown(bool(shutdown_read), bool(shutdown_write), _native_cancellable(cancellable))
        return True

    # -- asyncio --

    async def handshake_async(self, cancellable: Cancellable | None = None, timeout: float | None = None) -> bool:
        """:meth:`handshake` as a coroutine; cancelling the task cancels the handshake."""
        return await _in_executor(lambda c: self.handshake(c, timeout), cancellable)

    async def send_messages_async(
        self,
        messages: typing.Sequence[bytes | bytearray],
        timeout: float | None = None,
        cancellable: Cancellable | None = None,
    ) -> int:
        """:meth:`send_messages` as a coroutine."""
        messages = list(messages)
        return await _in_executor(lambda c: self.send_messages(messages, timeout, c), cancellable)

    async def receive_messages_async(
        self,
        num_messages: int,
        timeout: float | None = None,
        cancellable: Cancellable | None = None,
    ) -> list[bytes]:
        """:meth:`receive_messages` as a coroutine."""
        return await _in_executor(lambda c: self.receive_messages(num_messages, timeout, c), cancellable)

    async def close_async(self, cancellable: Cancellable | None = None) -> bool:
        """:meth:`close` as a coroutine."""
        return await _in_executor(self.close, cancellable)

    async def shutdown_async(
        self, shutdown_read: bool, shutdown_write: bool, cancellable: Cancellable | None = None
    ) -> bool:
        """:meth:`shutdown` as a coroutine."""
        return await _in_executor(lambda c: self.shutdown(shutdown_read, shutdown_write, c), cancellable)

    # -- accept-certificate --

    def connect(self, signal: str, callback: typing.Callable[..., object], *user_data: object) -> int:
        """Connects to the ``accept-certificate`` signal, as PyGObject does:
        ``callback(conn, peer_cert, errors, *user_data) -> bool`` is called during the
        handshake when verification found problems (``errors``, :class:`TlsCertificateFlags`).
        Handlers run in order until one returns True (accept). An exception aborts the
        handshake and is raised by the call that ran it. Returns a handler id."""
        if signal not in ("accept-certificate", "accept_certificate"):
            raise TypeError(f"{type(self).__name__}: unknown signal name: {signal}")
        handler_id = self._next_handler
        self._next_handler += 1
        self._handlers[handler_id] = (callback, user_data)
        return handler_id

    def disconnect(self, handler_id: int) -> None:
        """Disconnects a handler added by :meth:`connect`."""
        self._handlers.pop(handler_id, None)

    def set_accept_certificate_handler(
        self, handler: typing.Callable[[TlsCertificate, TlsCertificateFlags], object] | None
    ) -> None:
        """Sets the default handler ``handler(peer_cert, errors) -> bool`` (GIO's
        ``do_accept_certificate``), asked after the connected ones; None removes it."""
        self._accept_handler = handler

    def emit_accept_certificate(self, peer_cert: TlsCertificate, errors: TlsCertificateFlags) -> bool:
        """Emits ``accept-certificate``: True if a handler accepts ``peer_cert``. With no
        handler the certificate is refused."""
        for callback, data in list(self._handlers.values()):
            if callback(self, peer_cert, errors, *data):
                return True
        return bool(self._accept_handler(peer_cert, errors)) if self._accept_handler else False

    # -- settings and results (GIO's get_/set_ pairs, and properties) --

    def get_base_socket(self) -> socket.socket | None:
        """The datagram socket the connection runs over; None for a connection accepted by a
        :class:`DtlsServer` (its socket is the server's)."""
        return self._base_socket

    def set_certificate(self, certificate: TlsCertificate) -> None:
        """The certificate (with its private key) to present to the peer."""
        if not isinstance(certificate, TlsCertificate):
            raise TypeError("certificate must be a TlsCertificate")
        if certificate.pkey is None:
            raise ValueError("the certificate has no private key")
        self._native.set_certificate(certificate.x509._signed(), _private_native(certificate.pkey))
        self._certificate = certificate

    def get_certificate(self) -> TlsCertificate | None:
        """The certificate set by :meth:`set_certificate` (or the server's constructor); after
        :meth:`set_certificate_pem`, the chain's first certificate (its key stays inside the
        connection)."""
        return self._certificate

    def set_certificate_pem(self, chain_pem: str | bytes, key_pem: str | bytes) -> None:
        """Our certificate chain (leaf first) and its private key, from PEM (a ferrossl
        addition, GIO's ``TlsCertificate`` from files). An encrypted key (PKCS#8) asks the
        :attr:`interaction` for its password, up to three times; with no answer, or only wrong
        ones, :class:`BadCertificatePassword` is raised; an exception the interaction raises
        is raised here."""
        self._native.set_certificate_pem(_pem_text(chain_pem), _pem_text(key_pem))
        native = self._native.get_certificate()
        self._certificate = None if native is None else TlsCertificate._from_native(native)

    def set_interaction(self, interaction: TlsInteraction | None) -> None:
        """The :class:`TlsInteraction` asked for passwords; None asks nobody."""
        self._native.set_interaction(_check_interaction(interaction))
        self._interaction = interaction

    def get_interaction(self) -> TlsInteraction | None:
        """See :meth:`set_interaction`."""
        return self._interaction

    def set_database(self, database: crypto.X509Store | None) -> None:
        """The trust anchors peers are verified against (default: the system's). None makes
        every peer ``UNKNOWN_CA``. The store's certificates are copied at this call."""
        if database is not None and not isinstance(database, crypto.X509Store):
            raise TypeError("database must be a ferrossl.crypto.X509Store or None")
        self._native.set_database(None if database is None else database._native)
        self._database = database

    def get_database(self) -> crypto.X509Store | None:
        """The database set by :meth:`set_database`; by default a store of the system's
        trust anchors; None if set to None."""
        if self._database is _UNSET:
            return crypto.X509Store._from_native(self._native.get_database())
        return typing.cast("crypto.X509Store | None", self._database)

    def set_require_close_notify(self, require_close_notify: bool) -> None:
        """Whether a peer going away without close_notify raises :class:`Eof` (True, the
        default) or reads as the end (``b""``)."""
        self._native.set_require_close_notify(bool(require_close_notify))

    def get_require_close_notify(self) -> bool:
        """See :meth:`set_require_close_notify`."""
        return self._native.get_require_close_notify()

    def set_advertised_protocols(self, protocols: typing.Sequence[str] | None = None) -> None:
        """The ALPN protocols to offer (client) or accept (server); None disables ALPN."""
        names = None if protocols is None else [str(p) for p in protocols]
        self._native.set_advertised_protocols(names)
        self._advertised = names

    def get_advertised_protocols(self) -> list[str] | None:
        """The protocols set by :meth:`set_advertised_protocols`."""
        return None if self._advertised is None else list(self._advertised)

    def get_negotiated_protocol(self) -> str | None:
        """The ALPN protocol agreed in the handshake, or None."""
        return self._native.get_negotiated_protocol()

    def get_peer_certificate(self) -> TlsCertificate | None:
        """The peer's certificate, after the handshake."""
        native = self._native.get_peer_certificate()
        return None if native is None else TlsCertificate._from_native(native)

    def get_peer_certificate_errors(self) -> TlsCertificateFlags:
        """The problems verification found with the peer's certificate (after the handshake,
        also a failed one)."""
        return TlsCertificateFlags(self._native.get_peer_certificate_errors())

    def get_protocol_version(self) -> TlsProtocolVersion:
        """``DTLS_1_2`` or ``DTLS_1_3`` after the handshake; ``UNKNOWN`` before it and after
        close."""
        return TlsProtocolVersion(self._native.get_protocol_version())

    def set_protocol_versions(self, min_version: TlsProtocolVersion, max_version: TlsProtocolVersion) -> None:
        """Bounds the DTLS versions the handshake may agree on (a ferrossl addition to GIO's
        API): each bound ``DTLS_1_2``, ``DTLS_1_3`` or ``UNKNOWN`` (no bound); the default is
        ``(UNKNOWN, UNKNOWN)``: DTLS 1.3, and 1.2 with peers that lack it (a client offers
        both in one ClientHello). A maximum of ``DTLS_1_2`` turns 1.3 off, a minimum of
        ``DTLS_1_3`` turns 1.2 off. Another version, or bounds that leave none, raise
        ``ValueError``. Takes effect at the handshake."""
        bounds = (_dtls_version(min_version), _dtls_version(max_version))
        self._native.set_protocol_versions(int(bounds[0]), int(bounds[1]))
        self._protocol_versions = bounds

    def get_protocol_versions(self) -> tuple[TlsProtocolVersion, TlsProtocolVersion]:
        """The (minimum, maximum) set by :meth:`set_protocol_versions`."""
        return self._protocol_versions

    def get_ciphersuite_name(self) -> str | None:
        """The cipher suite's IANA name (e.g. ``TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256``), or
        None before the handshake."""
        return self._native.get_ciphersuite_name()

    def get_channel_binding_data(self, type: TlsChannelBindingType) -> bytes:
        """Channel binding data: ``EXPORTER`` (RFC 9266, 32 bytes) or ``SERVER_END_POINT``
        (RFC 5929 §4), equal on both ends. Raises :class:`ChannelBindingError` (e.g.
        ``INVALID_STATE`` before the handshake, ``NOT_SUPPORTED`` for what the engine lacks)."""
        return self._native.get_channel_binding_data(int(TlsChannelBindingType(type)))

    def set_srtp_profiles(self, profiles: str | typing.Sequence[str] | None) -> None:
        """The DTLS-SRTP profiles (RFC 5764 ``use_srtp``) to offer (client) or accept
        (server), most preferred first: names such as ``"SRTP_AES128_CM_SHA1_80"`` in a list
        or joined with ``:``; None for no SRTP. A ferrossl addition to GIO's API. An unknown
        name raises ``ValueError`` at once."""
        self._native.set_srtp_profiles(_srtp_list(profiles))

    def get_selected_srtp_profile(self) -> str | None:
        """The SRTP profile the handshake selected, or None."""
        return self._native.get_selected_srtp_profile()

    def export_keying_material(
        self, label: str | bytes, length: int, context: bytes | bytearray | None = None
    ) -> bytes:
        """``length`` bytes of keying material from the association (RFC 5705), equal on both
        ends; ``"EXTRACTOR-dtls_srtp"`` gives the SRTP master keys and salts (RFC 5764 §4.2).
        A ferrossl addition to GIO's API. Before the handshake it raises :class:`TlsError`."""
        raw_label = label.encode("ascii") if isinstance(label, str) else bytes(label)
        if length < 0:
            raise ValueError("length must not be negative")
        return self._native.export_keying_material(raw_label, length, None if context is None else bytes(context))

    def set_rehandshake_mode(self, mode: TlsRehandshakeMode) -> None:
        """Kept for GIO compatibility and ignored, as in GIO since 2.64 (the value is checked)."""
        TlsRehandshakeMode(mode)

    def get_rehandshake_mode(self) -> TlsRehandshakeMode:
        """Always ``SAFELY``, as GIO answers since 2.64 whatever was set (no rehandshake ever
        happens: renegotiation is refused)."""
        return TlsRehandshakeMode.SAFELY

    base_socket = property(get_base_socket, doc="The datagram socket the connection runs over, or None.")
    interaction = property(get_interaction, set_interaction, doc="The TlsInteraction asked for passwords.")
    selected_srtp_profile = property(get_selected_srtp_profile, doc="The SRTP profile selected, or None.")
    certificate = property(get_certificate, set_certificate, doc="Our certificate (a TlsCertificate).")
    database = property(get_database, set_database, doc="The trust anchors (an X509Store or None).")
    require_close_notify = property(
        get_require_close_notify, set_require_close_notify, doc="Whether close_notify is required."
    )
    advertised_protocols = property(
        get_advertised_protocols, set_advertised_protocols, doc="The ALPN protocols offered."
    )
    negotiated_protocol = property(get_negotiated_protocol, doc="The ALPN protocol agreed, or None.")
    peer_certificate = property(get_peer_certificate, doc="The peer's certificate, or None.")
    peer_certificate_errors = property(get_peer_certificate_errors, doc="The peer certificate's problems.")
    protocol_version = property(get_protocol_version, doc="The protocol version.")
    ciphersuite_name = property(get_ciphersuite_name, doc="The cipher suite's IANA name, or None.")
    rehandshake_mode = property(get_rehandshake_mode, set_rehandshake_mode, doc="Ignored (GIO compatibility).")


def _private_native(pkey: crypto.PKey) -> _native.NativePKey:
    if pkey._native is None:
        raise ValueError("the certificate's key is not a private key")
    return pkey._native


class DtlsClientConnection(DtlsConnection):
    """GIO's ``GDtlsClientConnection``: the client end."""

    def __init__(
        self, native: _native.NativeDtlsConnection, base_socket: socket.socket, server_identity: str | None
    ) -> None:
        super().__init__(native, base_socket)
        self._server_identity = server_identity
        self._validation_flags = TlsCertificateFlags.VALIDATE_ALL

    @classmethod
    def new(
        cls,
        base_socket: socket.socket,
        server_identity: str | None,
        peer_address: typing.Any = None,
    ) -> DtlsClientConnection:
        """A client over ``base_socket`` (connected, or talking to ``peer_address``).
        ``server_identity`` is the name sent as SNI and checked against the server's
        certificate (an IP address is only checked); None checks no name."""
        peer = _check_socket(base_socket, peer_address)
        native = _native.NativeDtlsConnection.client(base_socket, peer, server_identity)
        return cls(native, base_socket, server_identity)

    def get_server_identity(self) -> str | None:
        """The identity given to :meth:`new`."""
        return self._server_identity

    def set_validation_flags(self, flags: TlsCertificateFlags) -> None:
        """Which problems count (default ``VALIDATE_ALL``); problems outside them are ignored
        and never reach the accept-certificate handler."""
        flags = TlsCertificateFlags(flags)
        self._native.set_validation_flags(int(flags))
        self._validation_flags = flags

    def get_validation_flags(self) -> TlsCertificateFlags:
        """See :meth:`set_validation_flags`."""
        return self._validation_flags

    def get_accepted_cas(self) -> list[bytes]:
        """The CA names the server's CertificateRequest gave, each as the DER of an X.509
        Name, as GIO gives them (the form of ``cryptography``'s ``x509.Name.public_bytes()``). Empty before a request and when the
        server named none; still there after a failed handshake (e.g. after
        :class:`CertificateRequired`)."""
        return [bytes(der) for der in self._native.get_accepted_cas()]

    server_identity = property(get_server_identity, doc="The expected server name, or None.")
    accepted_cas = property(get_accepted_cas, doc="The CA names (DER) a server asked for.")
    validation_flags = property(get_validation_flags, set_validation_flags, doc="Which problems count.")


class DtlsServerConnection(DtlsConnection):
    """GIO's ``GDtlsServerConnection``: the server end, for one client (over a socket of its
    own, or accepted by a :class:`DtlsServer`)."""

    def __init__(
        self, native: _native.NativeDtlsConnection, base_socket: socket.socket | None, certificate: TlsCertificate
    ) -> None:
        super().__init__(native, base_socket)
        self._certificate = certificate
        self._authentication_mode = TlsAuthenticationMode.NONE

    @classmethod
    def new(
        cls,
        base_socket: socket.socket,
        certificate: TlsCertificate,
        peer_address: typing.Any = None,
    ) -> DtlsServerConnection:
        """A server over ``base_socket`` (connected to the client, or talking to
        ``peer_address`` only), presenting ``certificate`` (a :class:`TlsCertificate` with
        its private key)."""
        if not isinstance(certificate, TlsCertificate):
            raise TypeError("certificate must be a TlsCertificate")
        if certificate.pkey is None:
            raise ValueError("the server's certificate needs its private key")
        peer = _check_socket(base_socket, peer_address)
        native = _native.NativeDtlsConnection.server(
            base_socket, peer, certificate.x509._signed(), _private_native(certificate.pkey)
        )
        return cls(native, base_socket, certificate)

    def set_authentication_mode(self, mode: TlsAuthenticationMode) -> None:
        """Whether to ask for a client certificate (default ``NONE``)."""
        mode = TlsAuthenticationMode(mode)
        self._native.set_authentication_mode(int(mode))
        self._authentication_mode = mode

    def get_authentication_mode(self) -> TlsAuthenticationMode:
        """See :meth:`set_authentication_mode`."""
        return self._authentication_mode

    authentication_mode = property(
        get_authentication_mode, set_authentication_mode, doc="The client-certificate policy."
    )


# --- DtlsServer -----------------------------------------------------------------------------

_DEFAULT_LIMITS = _native.default_server_limits()


@dataclasses.dataclass(frozen=True)
class ServerLimits:
    """The bounds a :class:`DtlsServer` keeps to (timeouts in seconds)."""

    #: Associations whose handshake has not finished; verified ClientHellos beyond this are
    #: dropped (the client retransmits later).
    max_half_open: int = _DEFAULT_LIMITS[0]
    #: Associations in all.
    max_associations: int = _DEFAULT_LIMITS[1]
    #: How long a new association may take to finish its handshake.
    handshake_timeout: float = _DEFAULT_LIMITS[2]
    #: How long an established association may stay silent before it is forgotten.
    idle_timeout: float = _DEFAULT_LIMITS[3]


@dataclasses.dataclass(frozen=True)
class ServerStats:
    """What a :class:`DtlsServer` did with the datagrams it read."""

    #: HelloVerifyRequests sent, each answering a ClientHello without state (RFC 6347 §4.2.1).
    hello_verify_requests: int
    #: Datagrams dropped without an answer (not a ClientHello, or unusable).
    dropped: int
    #: Verified ClientHellos refused because a limit was reached.
    refused: int
    #: Associations made.
    associations_made: int
    #: Associations forgotten (idle, unfinished, restarted, or their connection dropped).
    expired: int


class DtlsServer:
    """A DTLS server for many clients on one UDP socket (a ferrossl addition; GIO has none).

    ``DtlsServer(("127.0.0.1", 4433), certificate)`` binds a socket of its own (port 0 picks a
    free one, see :attr:`local_address`) and reads it on a thread of its own: a ClientHello
    from a new address gets a stateless HelloVerifyRequest (RFC 6347 §4.2.1; a DTLS 1.3 one a
    HelloRetryRequest with a cookie), and only one whose cookie proves the address makes an
    association, within :class:`ServerLimits`.
    :meth:`accept` hands out a :class:`DtlsServerConnection` for each new client, to run on a
    thread (or task) of its own; it behaves like one made with ``DtlsServerConnection.new``
    (its :attr:`~DtlsConnection.base_socket` is None).

    The settings (``set_authentication_mode``, ``set_database``, ``set_advertised_protocols``,
    ``set_accept_certificate_handler``, ``set_require_close_notify``, ``set_interaction``,
    ``set_certificate``/``set_certificate_pem``, ``set_srtp_profiles``,
    ``set_protocol_versions``, ``set_limits``) apply to clients that arrive after them.
    :meth:`close` (or the end of a ``with`` block) stops the server: connections accepted
    from it see their association end.
    """

    def __init__(
        self, address: tuple[typing.Any, ...], certificate: TlsCertificate, *, limits: ServerLimits | None = None
    ) -> None:
        if not isinstance(certificate, TlsCertificate):
            raise TypeError("certificate must be a TlsCertificate")
        if certificate.pkey is None:
            raise ValueError("the server's certificate needs its private key")
        host, port = str(address[0]), int(address[1])
        self._native = _native.NativeDtlsServer(
            host, port, certificate.x509._signed(), _private_native(certificate.pkey)
        )
        self._certificate = certificate
        self._authentication_mode = TlsAuthenticationMode.NONE
        self._database: typing.Any = _UNSET
        self._advertised: list[str] | None = None
        self._require_close_notify = True
        self._interaction: TlsInteraction | None = None
        self._accept_handler: typing.Callable[[TlsCertificate, TlsCertificateFlags], object] | None = None
        self._limits = ServerLimits()
        self._protocol_versions = (TlsProtocolVersion.UNKNOWN, TlsProtocolVersion.UNKNOWN)
        if limits is not None:
            self.set_limits(limits)

    def __enter__(self) -> DtlsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops the server and frees its socket; a blocked :meth:`accept` raises
        :class:`Closed` (within about 20 ms), later calls too. Closing again does nothing."""
        self._native.close()

    def get_local_address(self) -> tuple[typing.Any, ...]:
        """The bound address as ``socket.getsockname()`` gives it."""
        return self._native.local_address()

    def accept(self, timeout: float | None = None, cancellable: Cancellable | None = None) -> DtlsServerConnection:
        """The next new client's connection (its handshake has begun: run it with
        :meth:`~DtlsConnection.handshake` or the first receive). ``timeout`` and
        ``cancellable`` as in :meth:`DtlsConnection.send_messages`: :class:`TimedOut`,
        :class:`WouldBlock`, :class:`Cancelled`; :class:`Closed` once the server is closed."""
        native = self._native.accept(timeout, _native_cancellable(cancellable))
        conn = DtlsServerConnection(native, None, self._certificate)
        conn._authentication_mode = self._authentication_mode
        conn._database = self._database
        conn._advertised = None if self._advertised is None else list(self._advertised)
        conn._interaction = self._interaction
        conn._protocol_versions = self._protocol_versions
        conn.set_accept_certificate_handler(self._accept_handler)
        return conn

    async def accept_async(
        self, timeout: float | None = None, cancellable: Cancellable | None = None
    ) -> DtlsServerConnection:
        """:meth:`accept` as a coroutine; cancelling the task cancels the wait."""
        return await _in_executor(lambda c: self.accept(timeout, c), cancellable)

    # -- settings for the connections to come --

    def set_certificate(self, certificate: TlsCertificate) -> None:
        """The certificate (with its private key) presented from now on."""
        if not isinstance(certificate, TlsCertificate):
            raise TypeError("certificate must be a TlsCertificate")
        if certificate.private_key_pem is None:
            raise ValueError("the certificate has no private key")
        self._native.set_certificate_pem(certificate.certificate_pem.encode(), certificate.private_key_pem.encode())
        self._certificate = certificate

    def get_certificate(self) -> TlsCertificate:
        """The certificate presented (after :meth:`set_certificate_pem`, without its key)."""
        return self._certificate

    def set_certificate_pem(self, chain_pem: str | bytes, key_pem: str | bytes) -> None:
        """As :meth:`DtlsConnection.set_certificate_pem`: an encrypted key asks the
        :attr:`interaction`."""
        chain = _pem_text(chain_pem)
        self._native.set_certificate_pem(chain, _pem_text(key_pem))
        self._certificate = TlsCertificate(crypto.load_certificate(crypto.FILETYPE_PEM, chain))

    def set_authentication_mode(self, mode: TlsAuthenticationMode) -> None:
        """Whether to ask clients for a certificate (default ``NONE``); one that asks names the
        CAs of the :attr:`database` (a client's ``accepted_cas``)."""
        mode = TlsAuthenticationMode(mode)
        self._native.set_authentication_mode(int(mode))
        self._authentication_mode = mode

    def get_authentication_mode(self) -> TlsAuthenticationMode:
        """See :meth:`set_authentication_mode`."""
        return self._authentication_mode

    def set_database(self, database: crypto.X509Store | None) -> None:
        """The trust anchors for client certificates (default: the system's; None: every one
        is ``UNKNOWN_CA``). The store's certificates are copied at this call."""
        if database is not None and not isinstance(database, crypto.X509Store):
            raise TypeError("database must be a ferrossl.crypto.X509Store or None")
        self._native.set_database(None if database is None else database._native)
        self._database = database

    def set_advertised_protocols(self, protocols: typing.Sequence[str] | None = None) -> None:
        """The ALPN protocols accepted, in the server's order of preference; None: no ALPN."""
        names = None if protocols is None else [str(p) for p in protocols]
        self._native.set_advertised_protocols(names)
        self._advertised = names

    def get_advertised_protocols(self) -> list[str] | None:
        """See :meth:`set_advertised_protocols`."""
        return None if self._advertised is None else list(self._advertised)

    def set_accept_certificate_handler(
        self, handler: typing.Callable[[TlsCertificate, TlsCertificateFlags], object] | None
    ) -> None:
        """The default accept-certificate handler of each accepted connection (see
        :meth:`DtlsConnection.set_accept_certificate_handler`)."""
        self._accept_handler = handler

    def set_require_close_notify(self, require_close_notify: bool) -> None:
        """See :meth:`DtlsConnection.set_require_close_notify` (default True)."""
        self._native.set_require_close_notify(bool(require_close_notify))
        self._require_close_notify = bool(require_close_notify)

    def get_require_close_notify(self) -> bool:
        """See :meth:`set_require_close_notify`."""
        return self._require_close_notify

    def set_interaction(self, interaction: TlsInteraction | None) -> None:
        """The :class:`TlsInteraction` asked for passwords (by :meth:`set_certificate_pem`)."""
        self._native.set_interaction(_check_interaction(interaction))
        self._interaction = interaction

    def get_interaction(self) -> TlsInteraction | None:
        """See :meth:`set_interaction`."""
        return self._interaction

    def set_srtp_profiles(self, profiles: str | typing.Sequence[str] | None) -> None:
        """The DTLS-SRTP profiles accepted (see :meth:`DtlsConnection.set_srtp_profiles`)."""
        self._native.set_srtp_profiles(_srtp_list(profiles))

    def set_protocol_versions(self, min_version: TlsProtocolVersion, max_version: TlsProtocolVersion) -> None:
        """Bounds the DTLS versions of the associations to come (a ferrossl addition; see
        :meth:`DtlsConnection.set_protocol_versions`): a maximum of ``DTLS_1_3`` lets clients
        use DTLS 1.3 as well as 1.2, both bounds ``DTLS_1_3`` admits DTLS 1.3 clients only."""
        bounds = (_dtls_version(min_version), _dtls_version(max_version))
        self._native.set_protocol_versions(int(bounds[0]), int(bounds[1]))
        self._protocol_versions = bounds

    def get_protocol_versions(self) -> tuple[TlsProtocolVersion, TlsProtocolVersion]:
        """See :meth:`set_protocol_versions`."""
        return self._protocol_versions

    def set_limits(self, limits: ServerLimits) -> None:
        """The bounds on associations (:class:`ServerLimits`)."""
        if not isinstance(limits, ServerLimits):
            raise TypeError("limits must be a ServerLimits")
        counts = (int(limits.max_half_open), int(limits.max_associations))
        if min(counts) < 0:
            raise ValueError("the limits must not be negative")
        self._native.set_limits(*counts, float(limits.handshake_timeout), float(limits.idle_timeout))
        self._limits = limits

    def get_limits(self) -> ServerLimits:
        """See :meth:`set_limits`."""
        return self._limits

    # -- what the server holds and did --

    def get_association_count(self) -> int:
        """How many associations exist (half-open ones included)."""
        return self._native.association_count()

    def get_half_open_count(self) -> int:
        """How many associations have not finished their handshake."""
        return self._native.half_open_count()

    def get_stats(self) -> ServerStats:
        """What the server did so far (:class:`ServerStats`)."""
        return ServerStats(*self._native.stats())

    local_address = property(get_local_address, doc="The bound address (host, port, ...).")
    certificate = property(get_certificate, set_certificate, doc="The certificate presented.")
    authentication_mode = property(
        get_authentication_mode, set_authentication_mode, doc="The client-certificate policy."
    )
    advertised_protocols = property(
        get_advertised_protocols, set_advertised_protocols, doc="The ALPN protocols accepted."
    )
    require_close_notify = property(
        get_require_close_notify, set_require_close_notify, doc="Whether close_notify is required."
    )
    interaction = property(get_interaction, set_interaction, doc="The TlsInteraction asked for passwords.")
    limits = property(get_limits, set_limits, doc="The bounds on associations (ServerLimits).")
    association_count = property(get_association_count, doc="How many associations exist.")
    half_open_count = property(get_half_open_count, doc="How many handshakes are unfinished.")
    stats = property(get_stats, doc="What the server did so far (ServerStats).")
