"""DTLS 1.2 over UDP with GIO's ``GDtlsConnection`` API.

``DtlsClientConnection.new(sock, "host")`` and ``DtlsServerConnection.new(sock, certificate)``
wrap a Python ``socket.socket`` of type ``SOCK_DGRAM`` (connected, or given a
``peer_address``) and offer GIO's methods and properties under GIO's names: ``handshake``,
``send_messages``/``receive_messages`` with a timeout and a :class:`Cancellable`, ``close``,
``shutdown``, the ``accept-certificate`` signal with :class:`TlsCertificateFlags`, ALPN,
channel binding, and ``*_async`` coroutines for asyncio.

Everything runs in ``ferrossl::gio::DtlsConnection`` (Rust), with the GIL released while it
waits or computes. Errors are :class:`GioError` subclasses carrying GIO's error domain and
code (see :func:`_error` for the mapping). The base socket is never closed by the connection.
"""

from __future__ import annotations

import asyncio
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
    "Cancellable",
    "Cancelled",
    "CertificateRequired",
    "ChannelBindingError",
    "Closed",
    "DtlsClientConnection",
    "DtlsConnection",
    "DtlsServerConnection",
    "Eof",
    "GioError",
    "IOErrorEnum",
    "NotSupported",
    "TimedOut",
    "TlsAuthenticationMode",
    "TlsCertificate",
    "TlsCertificateFlags",
    "TlsChannelBindingError",
    "TlsChannelBindingType",
    "TlsError",
    "TlsErrorEnum",
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
    """``GTlsProtocolVersion``; a DTLS connection reports ``UNKNOWN`` or ``DTLS_1_2``."""

    UNKNOWN = 0
    SSL_3_0 = 1
    TLS_1_0 = 2
    TLS_1_1 = 3
    TLS_1_2 = 4
    TLS_1_3 = 5
    DTLS_1_0 = 201
    DTLS_1_2 = 202


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
    ``Tls(NotSupported)``     :class:`NotSupported` (IO, ``NOT_SUPPORTED``)
    ``Tls(..)``               :class:`TlsError` (TLS, ``HANDSHAKE`` from ``handshake()``,
                              else ``MISC``)
    ``Io(e)``                 :class:`TransportError` (IO, from errno), ``.errno``
    ========================= =====================================================

    An exception raised by the socket itself (other than ``OSError``) or by an
    accept-certificate handler is raised unchanged.
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


class DtlsConnection:
    """GIO's ``GDtlsConnection``: DTLS 1.2 over a datagram socket, client or server (see
    :class:`DtlsClientConnection`, :class:`DtlsServerConnection`).

    One call runs at a time; a second thread's call waits for it (with the GIL released), so
    stop a blocked call with its :class:`Cancellable`. The connection may not be used from
    inside its own accept-certificate handler (:class:`TlsError`). Settings take effect at the
    handshake, which the first send or receive runs if :meth:`handshake` was not called.
    ``with conn:`` closes it on exit.
    """

    def __init__(self, native: _native.NativeDtlsConnection, base_socket: socket.socket) -> None:
        self._native = native
        self._base_socket = base_socket
        self._certificate: TlsCertificate | None = None
        self._database: typing.Any = _UNSET
        self._advertised: list[str] | None = None
        self._rehandshake_mode = TlsRehandshakeMode.SAFELY
        self._handlers: dict[int, tuple[typing.Callable[..., object], tuple[object, ...]]] = {}
        self._next_handler = 1
        self._accept_handler: typing.Callable[[TlsCertificate, TlsCertificateFlags], object] | None = None
        native.set_accept_certificate_handler(_emitter(self))

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- I/O --

    def handshake(self, cancellable: Cancellable | None = None) -> bool:
        """Runs the handshake (optional: the first send or receive runs it); does nothing once
        it is done. The accept-certificate signal may be emitted during it. Returns True;
        failures raise (:class:`BadCertificate`, :class:`TlsError` with ``HANDSHAKE``...)."""
        self._native.handshake(_native_cancellable(cancellable))
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

    async def _in_executor(self, call: typing.Callable[[Cancellable], _T], cancellable: Cancellable | None) -> _T:
        """Runs ``call`` in the loop's default executor with a Cancellable of its own,
        triggered by ``cancellable`` or by the task's cancellation (which then waits for the
        call to stop before propagating)."""
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

    async def handshake_async(self, cancellable: Cancellable | None = None) -> bool:
        """:meth:`handshake` as a coroutine; cancelling the task cancels the handshake."""
        return await self._in_executor(self.handshake, cancellable)

    async def send_messages_async(
        self,
        messages: typing.Sequence[bytes | bytearray],
        timeout: float | None = None,
        cancellable: Cancellable | None = None,
    ) -> int:
        """:meth:`send_messages` as a coroutine."""
        messages = list(messages)
        return await self._in_executor(lambda c: self.send_messages(messages, timeout, c), cancellable)

    async def receive_messages_async(
        self,
        num_messages: int,
        timeout: float | None = None,
        cancellable: Cancellable | None = None,
    ) -> list[bytes]:
        """:meth:`receive_messages` as a coroutine."""
        return await self._in_executor(lambda c: self.receive_messages(num_messages, timeout, c), cancellable)

    async def close_async(self, cancellable: Cancellable | None = None) -> bool:
        """:meth:`close` as a coroutine."""
        return await self._in_executor(self.close, cancellable)

    async def shutdown_async(
        self, shutdown_read: bool, shutdown_write: bool, cancellable: Cancellable | None = None
    ) -> bool:
        """:meth:`shutdown` as a coroutine."""
        return await self._in_executor(lambda c: self.shutdown(shutdown_read, shutdown_write, c), cancellable)

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

    def get_base_socket(self) -> socket.socket:
        """The datagram socket the connection runs over."""
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
        """The certificate set by :meth:`set_certificate` (or the server's constructor)."""
        return self._certificate

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
        """``DTLS_1_2`` after the handshake; ``UNKNOWN`` before it and after close."""
        return TlsProtocolVersion(self._native.get_protocol_version())

    def get_ciphersuite_name(self) -> str | None:
        """The cipher suite's IANA name (e.g. ``TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256``), or
        None before the handshake."""
        return self._native.get_ciphersuite_name()

    def get_channel_binding_data(self, type: TlsChannelBindingType) -> bytes:
        """Channel binding data: ``EXPORTER`` (RFC 9266, 32 bytes) or ``SERVER_END_POINT``
        (RFC 5929 §4), equal on both ends. Raises :class:`ChannelBindingError` (e.g.
        ``INVALID_STATE`` before the handshake, ``NOT_SUPPORTED`` for what the engine lacks)."""
        return self._native.get_channel_binding_data(int(TlsChannelBindingType(type)))

    def set_rehandshake_mode(self, mode: TlsRehandshakeMode) -> None:
        """Kept for GIO compatibility and ignored, as in GIO since 2.64."""
        self._rehandshake_mode = TlsRehandshakeMode(mode)

    def get_rehandshake_mode(self) -> TlsRehandshakeMode:
        """The value last given to :meth:`set_rehandshake_mode` (it has no effect)."""
        return self._rehandshake_mode

    base_socket = property(get_base_socket, doc="The datagram socket the connection runs over.")
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

    server_identity = property(get_server_identity, doc="The expected server name, or None.")
    validation_flags = property(get_validation_flags, set_validation_flags, doc="Which problems count.")


class DtlsServerConnection(DtlsConnection):
    """GIO's ``GDtlsServerConnection``: the server end, for one client."""

    def __init__(
        self, native: _native.NativeDtlsConnection, base_socket: socket.socket, certificate: TlsCertificate
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
