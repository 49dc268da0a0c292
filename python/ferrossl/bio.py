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
    def __init__(self) -> None:
        super().__init__(TLS_method)


class TLSClientContext(SSLContext):
    def __init__(self) -> None:
        super().__init__(TLS_client_method)


class TLSServerContext(SSLContext):
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
        self._native.set_connect_state()

    def set_accept_state(self) -> None:
        self._native.set_accept_state()

    def set_fd(self, fd: int) -> None:
        """Runs over the connected socket with descriptor ``fd`` (duplicated: the caller keeps
        its own)."""
        self._sock = _socket.socket(fileno=os.dup(fd))
        # The SSL object blocks as OpenSSL's does on a blocking descriptor.
        self._sock.setblocking(True)
        self._native.set_socket(self._sock, fd)

    def get_fd(self) -> int:
        return self._native.get_fd()

    def connect(self) -> None:
        self._native.connect()

    def accept(self) -> None:
        self._native.accept()

    def write(self, data: str | bytes) -> int:
        return self._native.write(data.encode() if isinstance(data, str) else bytes(data))

    def read(self, length: int = -1) -> bytes:
        return self._native.read(length)

    def error(self, code: int = 0) -> int:
        """The ``SSL_ERROR_*`` number of the last operation."""
        return self._native.error()

    def shutdown(self) -> bool:
        return self._native.shutdown()

    def free(self) -> None:
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
        self._native.set_ssl(ssl._native, option)

    def set_conn_hostname(self, name: str) -> None:
        self._native.set_conn_hostname(name)

    def set_conn_address(self, address: str) -> None:
        self._native.set_conn_address(address)

    def set_conn_port(self, port: int | str) -> None:
        self._native.set_conn_port(str(port))

    def set_conn_family(self, family: int) -> None:
        self._native.set_conn_family(int(family))

    def get_conn_hostname(self) -> str:
        return self._native.get_conn_hostname()

    def get_conn_address(self) -> str:
        return self._native.get_conn_address()

    def get_conn_port(self) -> str:
        return self._native.get_conn_port()

    def get_conn_family(self) -> int:
        return self._native.get_conn_family()

    def set_accept_name(self, name: str) -> None:
        self._native.set_accept_name(name)

    def set_accept_port(self, port: int | str) -> None:
        self._native.set_accept_port(str(port))

    def set_accept_family(self, family: int) -> None:
        self._native.set_accept_family(int(family))

    def get_accept_name(self) -> str:
        return self._native.get_accept_name()

    def get_accept_port(self) -> str:
        return self._native.get_accept_port()

    def get_accept_family(self) -> int:
        return self._native.get_accept_family()

    def get_fd(self) -> int:
        return self._native.get_fd()

    def set_non_blocking(self, b: bool = True) -> None:
        self._native.set_non_blocking(b)

    def push(self, b: BIO) -> BIO:
        return BIO._wrap(self._native.push(b._native))

    def pop(self) -> BIO | None:
        rest = self._native.pop()
        return None if rest is None else BIO._wrap(rest)

    def write(self, data: str | bytes) -> int:
        return self._native.write(data.encode() if isinstance(data, str) else bytes(data))

    def read(self, length: int = 1024) -> bytes:
        return self._native.read(length)

    def should_retry(self) -> bool:
        return self._native.should_retry()

    def do_connect(self) -> None:
        self._native.do_connect()

    def do_accept(self) -> BIO | None:
        accepted = self._native.do_accept()
        return None if accepted is None else BIO._wrap(accepted)

    def error(self, code: int = 0) -> int:
        return self._native.error()

    def error_string(self, code: int = 0) -> str:
        return self._native.error_string()

    def free(self) -> None:
        self._native.free()


class SSLBIO(BIO):
    def __init__(self) -> None:
        super().__init__(BIO_f_ssl)


class ConnectBIO(BIO):
    def __init__(self) -> None:
        super().__init__(BIO_s_connect)


class AcceptedBIO(BIO):
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
        return self._native.state()["family"]

    @family.setter
    def family(self, value: int) -> None:
        self._native.set_family(int(value))

    @property
    def send_timeout(self) -> int:
        return self._native.state()["send_timeout"]

    @send_timeout.setter
    def send_timeout(self, ms: int) -> None:
        self._native.set_send_timeout(int(ms))

    @property
    def receive_timeout(self) -> int:
        return self._native.state()["receive_timeout"]

    @receive_timeout.setter
    def receive_timeout(self, ms: int) -> None:
        self._native.set_receive_timeout(int(ms))

    def connect(self, host: str | None, port: int, timeout: int = 300_000) -> bool:
        self._native.connect(host or self.host, int(port), int(timeout))
        return True

    def bind(self, port: int, host: str | None = None) -> bool:
        self._native.bind(int(port), host or self.host)
        return True

    def listen(self, queue_length: int = -1) -> bool:
        self._native.listen(int(queue_length))
        return True

    def accept(self) -> TLSSocket:
        return TLSSocket._wrap(self._native.accept(), self._context)

    def send(self, message: typing.Any, flags: int = 0) -> int:
        if hasattr(message, "read"):
            total = 0
            while chunk := message.read(16384):
                total += self._native.send(chunk.encode() if isinstance(chunk, str) else chunk)
            return total
        return self._native.send(message.encode() if isinstance(message, str) else bytes(message))

    def receive(self, length: int = -1, flags: int = 0) -> bytes:
        return self._native.receive(int(length))

    def read(self, length: int = 1024) -> bytes:
        return self._native.read(int(length))

    def close(self) -> bool:
        self._native.close()
        return True

    def shutdown(self) -> bool:
        self._native.shutdown()
        return True

    def set_option(self, option: int, value: typing.Any) -> bool:
        self._native.set_option(int(option), int(value))
        return True

    def get_option(self, option: int) -> int:
        return self._native.get_option(int(option))

    def set_blocking(self, mode: bool) -> None:
        self._native.set_blocking(bool(mode))

    def info(self) -> dict[str, typing.Any]:
        return self._native.info()

    def get_socket(self) -> None:
        """The socket lives inside ferrossl; there is no Python socket object to return."""
        return None

    def get_context(self) -> SSLContext:
        return self._context

