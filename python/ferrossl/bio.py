"""OpenSSL's BIO model and a TLS socket, as scripting-language bindings of OpenSSL offer them:
``SSLContext`` flavours, the ``SSL`` object, BIO chains (memory, connect, accept, the SSL
filter) and ``TLSSocket``. Errors raise ``ferrossl._ssl.Error`` and its subclasses with a reason.
"""

from __future__ import annotations

import os
import socket as _socket
import typing

from . import SSL as _ssl
from . import _native

__all__ = [
    "BIO",
    "SSL",
    "SSLContext",
    "TLSSocket",
    "AcceptedBIO",
    "ConnectBIO",
    "SSLBIO",
    "TLSContext",
    "TLSClientContext",
    "TLSServerContext",
    "SSLv23Context",
    "SSLv23ClientContext",
    "SSLv23ServerContext",
]

SSL_FILETYPE_PEM = _ssl.FILETYPE_PEM
SSL_FILETYPE_ASN1 = 2
SSL_VERIFY_NONE = _ssl.VERIFY_NONE
SSL_VERIFY_PEER = _ssl.VERIFY_PEER
SSL_VERIFY_FAIL_IF_NO_PEER_CERT = _ssl.VERIFY_FAIL_IF_NO_PEER_CERT
SSL_VERIFY_CLIENT_ONCE = _ssl.VERIFY_CLIENT_ONCE
SSL_VERIFY_POST_HANDSHAKE = _ssl.VERIFY_POST_HANDSHAKE

TLS_method = _ssl.TLS_METHOD
TLS_client_method = _ssl.TLS_CLIENT_METHOD
TLS_server_method = _ssl.TLS_SERVER_METHOD
SSLv23_method = TLS_method
SSLv23_client_method = TLS_client_method
SSLv23_server_method = TLS_server_method

BIO_NOCLOSE = 0
BIO_CLOSE = 1
BIO_f_ssl = "ssl"
BIO_s_connect = "connect"
BIO_s_accept = "accept"
BIO_s_mem = "mem"

SO_DEBUG, SO_REUSEADDR, SO_TYPE, SO_ERROR, SO_DONTROUTE, SO_BROADCAST = 1, 2, 3, 4, 5, 6
SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_OOBINLINE, SO_LINGER, SO_REUSEPORT = 7, 8, 9, 10, 13, 15
SO_RCVTIMEO, SO_SNDTIMEO = 20, 21
AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6


class SSLContext:
    """A TLS context for one of the ``*_method`` values."""

    def __init__(self, method: int) -> None:
        self._context = _ssl.Context(method)
        self.last_error: str | None = None

    def set_verify(self, mode: int) -> None:
        """Sets the verification mode. ``SSL_VERIFY_NONE`` takes no other flag."""
        if mode != SSL_VERIFY_NONE and not mode & SSL_VERIFY_PEER:
            raise ValueError("the other verify flags must be used together with SSL_VERIFY_PEER")
        if mode & SSL_VERIFY_POST_HANDSHAKE:
            raise _ssl.Error([("SSL routines", "", "not supported: post-handshake client authentication (TLS 1.3) is not offered by the engine")])
        self._context.set_verify(mode)

    def set_verify_locations(self, locations: str) -> None:
        """Trusts the certificates of a PEM file or a hashed directory."""
        if os.path.isdir(locations):
            self._context.load_verify_locations(None, locations)
        else:
            self._context.load_verify_locations(locations)

    def load_certs(self, cert_file: typing.Any, private_key_file: typing.Any) -> bool:
        """Loads a certificate (chain) and its key, from paths or open files; the reason of a
        failure is kept in ``last_error``."""
        try:
            self._context.use_certificate_chain_file(_as_path(cert_file))
            self._context.use_privatekey_file(_as_path(private_key_file))
            self._context.check_privatekey()
        except (_ssl.Error, OSError) as e:
            self.last_error = str(e)
            return False
        self.last_error = None
        return True

    def set_ciphers(self, ciphers: str) -> bool:
        """Sets the allowed TLS 1.2 suites (an OpenSSL cipher list, ':' separated)."""
        self._context.set_cipher_list(ciphers)
        return True

    def free(self) -> None:
        """Nothing to release by hand: kept for compatibility."""


def _as_path(value: typing.Any) -> str:
    name = getattr(value, "name", value)
    return os.fspath(name)


class TLSContext(SSLContext):
    """An :class:`SSLContext` for both roles (``TLS_method``)."""

    def __init__(self) -> None:
        super().__init__(TLS_method)


class TLSClientContext(SSLContext):
    """An :class:`SSLContext` for clients (``TLS_client_method``)."""

    def __init__(self) -> None:
        super().__init__(TLS_client_method)


class TLSServerContext(SSLContext):
    """An :class:`SSLContext` for servers (``TLS_server_method``)."""

    def __init__(self) -> None:
        super().__init__(TLS_server_method)


SSLv23Context = TLSContext
SSLv23ClientContext = TLSClientContext
SSLv23ServerContext = TLSServerContext


class SSLObject:
    """One TLS connection (OpenSSL's ``SSL``) over a socket descriptor or a BIO chain."""

    def __init__(self, context: SSLContext) -> None:
        self.context = context
        self._native = _native.NativeSsl(context._context._native)
        self._sock: _socket.socket | None = None

    def set_connect_state(self) -> None:
        """Makes this the client side."""
        self._native.set_connect_state()

    def set_accept_state(self) -> None:
        """Makes this the server side."""
        self._native.set_accept_state()

    def set_fd(self, fd: int) -> None:
        """Runs over the connected socket with descriptor ``fd`` (duplicated: the caller keeps
        its own)."""
        self._sock = _socket.socket(fileno=os.dup(fd))
        # The SSL object blocks as OpenSSL's does on a blocking descriptor.
        self._sock.setblocking(True)
        self._native.set_socket(self._sock, fd)

    def get_fd(self) -> int:
        """The descriptor given to :meth:`set_fd`, or -1."""
        return self._native.get_fd()

    def connect(self) -> None:
        """Runs the client handshake (blocking on a blocking socket).

        :raises Error: if it fails; WantReadError/WantWriteError on a non-blocking socket.
        """
        self._native.connect()

    def accept(self) -> None:
        """Runs the server handshake; see :meth:`connect`."""
        self._native.accept()

    def write(self, data: str | bytes) -> int:
        """Sends data (str is encoded as UTF-8); returns the bytes written.

        :raises Error: if the connection failed or is closed.
        """
        return self._native.write(data.encode() if isinstance(data, str) else bytes(data))

    def read(self, length: int = -1) -> bytes:
        """Reads up to ``length`` bytes (-1: what one read gives).

        :raises ZeroReturnError: once the peer closed the session.
        """
        return self._native.read(length)

    def error(self, code: int = 0) -> int:
        """The ``SSL_ERROR_*`` number of the last operation."""
        return self._native.error()

    def shutdown(self) -> bool:
        """Sends close_notify; True once the peer's has been received too."""
        return self._native.shutdown()

    def free(self) -> None:
        """Releases the connection and the duplicated descriptor; later calls raise Error."""
        self._native.free()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


#: The seed API names the SSL object class ``SSL``.
SSL = SSLObject


class BIO:
    """One BIO; ``push`` builds chains, ``pop`` takes them apart."""

    def __init__(self, method: str) -> None:
        self._native = _native.NativeBio(method)

    @classmethod
    def _wrap(cls, native: typing.Any) -> BIO:
        bio = cls.__new__(cls)
        bio._native = native
        return bio

    def set_ssl(self, ssl: SSLObject, option: int = BIO_NOCLOSE) -> None:
        """Puts an SSL object in this SSL filter BIO.

        :param ssl: an :class:`SSL`.
        :param option: ``BIO_CLOSE`` (free the SSL with the BIO) or ``BIO_NOCLOSE``.
        :raises ValueError: on a BIO of another kind.
        """
        self._native.set_ssl(ssl._native, option)

    def set_conn_hostname(self, name: str) -> None:
        """Sets the connect BIO's peer (``host`` or ``host:port``).

        :raises ValueError: on another kind of BIO.
        """
        self._native.set_conn_hostname(name)

    def set_conn_address(self, address: str) -> None:
        """Sets the connect BIO's peer address (an IP literal).

        :raises ValueError: on another kind of BIO or for a bad address.
        """
        self._native.set_conn_address(address)

    def set_conn_port(self, port: int | str) -> None:
        """Sets the connect BIO's port (int or str).

        :raises ValueError: on another kind of BIO.
        """
        self._native.set_conn_port(str(port))

    def set_conn_family(self, family: int) -> None:
        """Sets the connect BIO's address family (``AF_INET``, ``AF_INET6``).

        :raises ValueError: on another kind of BIO or an unknown family.
        """
        self._native.set_conn_family(int(family))

    def get_conn_hostname(self) -> str:
        """The connect BIO's host name."""
        return self._native.get_conn_hostname()

    def get_conn_address(self) -> str:
        """The connect BIO's peer address once connected."""
        return self._native.get_conn_address()

    def get_conn_port(self) -> str:
        """The connect BIO's port, as text."""
        return self._native.get_conn_port()

    def get_conn_family(self) -> int:
        """The connect BIO's address family."""
        return self._native.get_conn_family()

    def set_accept_name(self, name: str) -> None:
        """Sets the accept BIO's local address (``host`` or ``host:port``).

        :raises ValueError: on another kind of BIO.
        """
        self._native.set_accept_name(name)

    def set_accept_port(self, port: int | str) -> None:
        """Sets the accept BIO's port (0: any free port, readable after the first
        ``do_accept``).
        """
        self._native.set_accept_port(str(port))

    def set_accept_family(self, family: int) -> None:
        """Sets the accept BIO's address family."""
        self._native.set_accept_family(int(family))

    def get_accept_name(self) -> str:
        """The accept BIO's local host."""
        return self._native.get_accept_name()

    def get_accept_port(self) -> str:
        """The accept BIO's port, as text (the bound one once listening)."""
        return self._native.get_accept_port()

    def get_accept_family(self) -> int:
        """The accept BIO's address family."""
        return self._native.get_accept_family()

    def get_fd(self) -> int:
        """The socket descriptor of a socket BIO, or -1."""
        return self._native.get_fd()

    def set_non_blocking(self, b: bool = True) -> None:
        """Makes a socket BIO's calls return at once with a retry instead of blocking."""
        self._native.set_non_blocking(b)

    def push(self, b: BIO) -> BIO:
        """Appends ``b`` to this chain; returns the chain (this BIO).

        :raises ValueError: if that would make a loop.
        """
        return BIO._wrap(self._native.push(b._native))

    def pop(self) -> BIO | None:
        """Detaches this BIO from its chain; returns the rest of the chain, or None."""
        rest = self._native.pop()
        return None if rest is None else BIO._wrap(rest)

    def write(self, data: str | bytes) -> int:
        """Writes through the chain (str is encoded as UTF-8); returns the bytes written.

        :raises Error: on failure or after :meth:`free`.
        """
        return self._native.write(data.encode() if isinstance(data, str) else bytes(data))

    def read(self, length: int = 1024) -> bytes:
        """Reads up to ``length`` bytes through the chain (-1: what one read gives; b"" at the
        end).

        :raises WantReadError: when no data is there yet on a non-blocking chain.
        """
        return self._native.read(length)

    def should_retry(self) -> bool:
        """True when the last call failed only because it would have blocked."""
        return self._native.should_retry()

    def do_connect(self) -> None:
        """Connects the chain (and runs the TLS handshake of an SSL BIO in it).

        :raises Error: when the connection or handshake fails.
        """
        self._native.do_connect()

    def do_accept(self) -> BIO | None:
        """First call: binds and listens (returns None). Later calls: accepts a client and
        returns its chain (a copy of the SSL filter over the new socket).
        """
        accepted = self._native.do_accept()
        return None if accepted is None else BIO._wrap(accepted)

    def error(self, code: int = 0) -> int:
        """The ``SSL_ERROR_*`` number of the last operation."""
        return self._native.error()

    def error_string(self, code: int = 0) -> str:
        """A text description of the last error."""
        return self._native.error_string()

    def free(self) -> None:
        """Releases the BIO (and its SSL object under BIO_CLOSE); later calls raise Error."""
        self._native.free()


class SSLBIO(BIO):
    """The SSL filter BIO (``BIO_f_ssl``): put an :class:`SSL` object in it with ``set_ssl``."""

    def __init__(self) -> None:
        super().__init__(BIO_f_ssl)


class ConnectBIO(BIO):
    """A connecting socket BIO (``BIO_s_connect``): set host and port, then read or write."""

    def __init__(self) -> None:
        super().__init__(BIO_s_connect)


class AcceptedBIO(BIO):
    """A listening socket BIO (``BIO_s_accept``): the first ``do_accept`` binds, each later one accepts a client."""

    def __init__(self) -> None:
        super().__init__(BIO_s_accept)


class TLSSocket:
    """A TLS socket with bind/listen/accept, connect with a timeout, and timeouts on send and
    receive (``SO_SNDTIMEO``/``SO_RCVTIMEO``, in milliseconds)."""

    def __init__(self, socket: typing.Any = None, context: SSLContext | None = None, ssl: typing.Any = None) -> None:
        if socket is not None:
            raise _ssl.Error([("ferrossl", "", "TLSSocket makes its own socket; pass None")])
        self._context = context or TLSContext()
        self._native = _native.NativeTlsSocket(self._context._context._native)
        self._wrapped_socket = None

    @classmethod
    def _wrap(cls, native: typing.Any, context: SSLContext) -> TLSSocket:
        sock = cls.__new__(cls)
        sock._native = native
        sock._context = context
        sock._wrapped_socket = None
        return sock

    def __getattr__(self, name: str) -> typing.Any:
        state = self.__dict__["_native"].state()
        if name in state:
            return state[name]
        raise AttributeError(name)

    @property
    def family(self) -> int:
        """The address family (``AF_INET`` or ``AF_INET6``); settable before bind/connect."""
        return self._native.state()["family"]

    @family.setter
    def family(self, value: int) -> None:
        self._native.set_family(int(value))

    @property
    def send_timeout(self) -> int:
        """The send timeout in milliseconds (0: none); settable."""
        return self._native.state()["send_timeout"]

    @send_timeout.setter
    def send_timeout(self, ms: int) -> None:
        self._native.set_send_timeout(int(ms))

    @property
    def receive_timeout(self) -> int:
        """The receive timeout in milliseconds (0: none); settable."""
        return self._native.state()["receive_timeout"]

    @receive_timeout.setter
    def receive_timeout(self, ms: int) -> None:
        self._native.set_receive_timeout(int(ms))

    def connect(self, host: str | None, port: int, timeout: int = 300_000) -> bool:
        """Connects and runs the TLS client handshake.

        :param host: the host (None: the current one).
        :param port: the port.
        :param timeout: milliseconds for the TCP connection.
        :raises Error: when the connection or handshake fails or times out.
        """
        self._native.connect(host or self.host, int(port), int(timeout))
        return True

    def bind(self, port: int, host: str | None = None) -> bool:
        """Binds to ``port`` on ``host`` (0: any free port, then read ``port``).

        :raises Error: when the address is in use or invalid.
        """
        self._native.bind(int(port), host or self.host)
        return True

    def listen(self, queue_length: int = -1) -> bool:
        """Starts listening (``queue_length`` -1: the system default)."""
        self._native.listen(int(queue_length))
        return True

    def accept(self) -> TLSSocket:
        """Accepts one client and runs the server handshake; returns its TLSSocket.

        :raises WantReadError: on a non-blocking socket with no client waiting.
        """
        return TLSSocket._wrap(self._native.accept(), self._context)

    def send(self, message: typing.Any, flags: int = 0) -> int:
        """Sends bytes, str (UTF-8) or the contents of a readable file object; returns the
        bytes sent.

        :raises Error: on a closed socket or a send timeout.
        """
        if hasattr(message, "read"):
            total = 0
            while chunk := message.read(16384):
                total += self._native.send(chunk.encode() if isinstance(chunk, str) else chunk)
            return total
        return self._native.send(message.encode() if isinstance(message, str) else bytes(message))

    def receive(self, length: int = -1, flags: int = 0) -> bytes:
        """Receives up to ``length`` bytes (-1: what one read gives).

        :raises Error: on a receive timeout ("timed out") or a closed socket.
        """
        return self._native.receive(int(length))

    def read(self, length: int = 1024) -> bytes:
        """Receives up to ``length`` bytes; see :meth:`receive`."""
        return self._native.read(int(length))

    def close(self) -> bool:
        """Sends close_notify if connected and closes the socket; closing twice is harmless."""
        self._native.close()
        return True

    def shutdown(self) -> bool:
        """Sends close_notify and shuts the socket down for writing."""
        self._native.shutdown()
        return True

    def set_option(self, option: int, value: typing.Any) -> bool:
        """Sets a socket option (``SO_*`` constants of this module).

        :raises ValueError: for an unsupported option.
        """
        self._native.set_option(int(option), int(value))
        return True

    def get_option(self, option: int) -> int:
        """A socket option's value.

        :raises ValueError: for an unsupported option.
        """
        return self._native.get_option(int(option))

    def set_blocking(self, mode: bool) -> None:
        """Blocking (True) or non-blocking (False) calls."""
        self._native.set_blocking(bool(mode))

    def info(self) -> dict[str, typing.Any]:
        """The peer's address, port and family once connected, as a dict (empty before)."""
        return self._native.info()

    def get_socket(self) -> None:
        """The socket lives inside ferrossl; there is no Python socket object to return."""
        return None

    def get_context(self) -> SSLContext:
        """The :class:`SSLContext` this socket uses."""
        return self._context

