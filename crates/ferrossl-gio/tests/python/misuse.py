"""Calls in the wrong order and peers that misbehave: each must end in an error or a
default value, never a crash, a GLib critical (fatal here) or a hang.

Arguments: CA file, server chain file, server key file. Prints "ok <check>" per check passed."""
import socket
import sys
import threading

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

ca_file, chain_file, key_file = sys.argv[1:4]


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name}: {detail}")
    print("ok", name, flush=True)


def peer(behaviour):
    """A TCP peer on 127.0.0.1 doing `behaviour(conn)` with its one connection; its port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            behaviour(conn)
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def client_to(port):
    client = Gio.SocketClient.new()
    client.set_timeout(10)
    sock = client.connect_to_host("127.0.0.1", port, None)
    tls = Gio.TlsClientConnection.new(sock, Gio.NetworkAddress.new("localhost", port))
    tls.set_database(Gio.TlsFileDatabase.new(ca_file))
    return tls


def handshake_error(tls, cancellable=None):
    try:
        tls.handshake(cancellable)
        return None
    except GLib.Error as e:
        return e


# Properties before any handshake: defaults.
tls = client_to(peer(lambda conn: conn.recv(1)))
check("defaults", tls.get_peer_certificate() is None and tls.get_negotiated_protocol() is None
      and tls.get_ciphersuite_name() is None
      and tls.get_protocol_version() == Gio.TlsProtocolVersion.UNKNOWN)
# Closing before the handshake, twice, then a handshake: an error.
tls.close(None)
tls.close(None)
check("closed-before-handshake", tls.is_closed())
check("handshake-after-close", handshake_error(tls) is not None)

# A peer that is not TLS at all.
tls = client_to(peer(lambda conn: (conn.recv(4096), conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n"))))
error = handshake_error(tls)
check("not-tls", error is not None and error.matches(Gio.tls_error_quark(), Gio.TlsError.NOT_TLS), error)
check("handshake-fails-again", handshake_error(tls) is not None)

# A peer that hangs up during the handshake.
tls = client_to(peer(lambda conn: conn.recv(4096)))
error = handshake_error(tls)
check("hang-up", error is not None and error.matches(Gio.tls_error_quark(), Gio.TlsError.NOT_TLS), error)

# A peer that never answers: the cancellable ends the wait.
silent = threading.Event()
tls = client_to(peer(lambda conn: silent.wait(15)))
cancellable = Gio.Cancellable.new()
threading.Timer(0.3, cancellable.cancel).start()
error = handshake_error(tls, cancellable)
silent.set()
check("cancelled", error is not None and error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED), error)

# A server connection without a certificate.
port = peer(lambda conn: conn.recv(1))
client = Gio.SocketClient.new()
sock = client.connect_to_host("127.0.0.1", port, None)
server = Gio.TlsServerConnection.new(sock, None)
error = handshake_error(server)
check("server-without-certificate",
      error is not None and error.matches(Gio.tls_error_quark(), Gio.TlsError.CERTIFICATE_REQUIRED), error)

# A certificate without a key, offered by a server.
cert_only = Gio.TlsCertificate.new_from_file(chain_file)
port = peer(lambda conn: conn.recv(1))
sock = client.connect_to_host("127.0.0.1", port, None)
server = Gio.TlsServerConnection.new(sock, cert_only)
error = handshake_error(server)
check("server-certificate-without-key", error is not None, error)

# A server that requires a client certificate, which we do not have.
def require_client_certificate(conn):
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file, key_file)
    context.load_verify_locations(ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.wrap_socket(conn, server_side=True).recv(1)
    except (ssl.SSLError, OSError):
        pass


tls = client_to(peer(require_client_certificate))
error = handshake_error(tls)
if error is None:  # TLS 1.3: the refusal comes with the first read
    try:
        tls.get_input_stream().read_bytes(1, None)
    except GLib.Error as e:
        error = e
check("certificate-required",
      error is not None and error.matches(Gio.tls_error_quark(), Gio.TlsError.CERTIFICATE_REQUIRED), error)
