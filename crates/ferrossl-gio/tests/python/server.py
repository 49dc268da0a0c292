"""A GTlsServerConnection on 127.0.0.1:PORT for one TLS client.

Arguments: port, certificate chain file, key file, CA file, and "anonymous" (no client
certificate asked), "required" (a client certificate from the CA is required) or "reject" (one
is required, and the client's, from another CA, must reach accept-certificate with UNKNOWN_CA
and fail the handshake).
Prints "listening" once it accepts connections, then "ok <check>" per check passed: the
handshake, ALPN, a line read and answered reversed, the close with close_notify."""
import os
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

port, chain_file, key_file, ca_file, mode = sys.argv[1:6]


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name}: {detail}")
    print("ok", name, flush=True)


def is_backend_type(obj, ours):
    """Whether OBJ is of the type the selected backend makes: OURS, or with GIO_USE_TLS=gnutls
    one of glib-networking's GnuTLS types (the tests run this script on that backend too)."""
    name = type(obj).__gtype__.name
    if os.environ.get("GIO_USE_TLS") == "gnutls":
        return "Gnutls" in name
    return name == ours


listener = Gio.SocketListener.new()
address = Gio.InetSocketAddress.new_from_string("127.0.0.1", int(port))
listener.add_address(address, Gio.SocketType.STREAM, Gio.SocketProtocol.TCP, None)
print("listening", flush=True)
cancel = Gio.Cancellable.new()
GLib.timeout_add_seconds(15, cancel.cancel)  # never wait for a client forever
conn, _ = listener.accept(cancel)
conn.get_socket().set_timeout(10)

cert = Gio.TlsCertificate.new_from_files(chain_file, key_file)
tls = Gio.TlsServerConnection.new(conn, cert)
check("type", is_backend_type(tls, "FerrosslServerConnection"), type(tls).__gtype__.name)
tls.set_advertised_protocols(["x-ferrossl"])
seen = []
# GIO asks a server about every client certificate: accept the ones without problems.
tls.connect("accept-certificate", lambda c, cert, errors: seen.append(errors) or errors == 0)
if mode in ("required", "reject"):
    tls.set_database(Gio.TlsFileDatabase.new(ca_file))
    tls.props.authentication_mode = Gio.TlsAuthenticationMode.REQUIRED
if mode == "reject":
    try:
        tls.handshake(None)
        check("refused", False, "the handshake succeeded")
    except GLib.Error as e:
        check("refused", e.matches(Gio.tls_error_quark(), Gio.TlsError.BAD_CERTIFICATE), e.message)
    check("signal", seen == [Gio.TlsCertificateFlags.UNKNOWN_CA], seen)
    sys.exit(0)
tls.handshake(None)
check("handshake", True)
check("alpn", tls.get_negotiated_protocol() == "x-ferrossl", tls.get_negotiated_protocol())
version = tls.get_protocol_version()
check("protocol-version", version in (Gio.TlsProtocolVersion.TLS_1_2, Gio.TlsProtocolVersion.TLS_1_3), version)
peer = tls.get_peer_certificate()
if mode == "required":
    check("client-certificate", peer is not None and "ferrossl test client" in peer.props.subject_name,
          peer and peer.props.subject_name)
    check("client-trusted", tls.get_peer_certificate_errors() == 0, tls.get_peer_certificate_errors())
    check("asked-about-a-good-certificate", seen == [0], seen)
else:
    check("no-client-certificate", peer is None)

inp = Gio.DataInputStream.new(tls.get_input_stream())
line, _ = inp.read_line_utf8(None)
check("read", line == "hello from s_client", line)
tls.get_output_stream().write_all(line[::-1].encode() + b"\n", None)
tls.close(None)
check("closed", conn.is_closed())
