"""A GTlsClientConnection over a GSocketConnection to a TLS server on 127.0.0.1.

Arguments: port, CA file, and "trusted" (handshake, ALPN, a line sent and its reversal read
back, close with close_notify), "echo" (the same with a server that sends the line back as it
is, such as gnutls-serv --echo), "untrusted" (the server's certificate must reach
accept-certificate with UNKNOWN_CA, be refused, and fail the handshake) or "unvalidated" (the
same server with the deprecated validation-flags set to none of its problems: accepted without
asking accept-certificate, its UNKNOWN_CA still in peer-certificate-errors).
Prints "ok <check>" per check passed and the facts it checked."""
import os
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

port, ca_file, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
F = Gio.TlsCertificateFlags


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


client = Gio.SocketClient.new()
client.set_timeout(10)
sock = client.connect_to_host("127.0.0.1", port, None)
tls = Gio.TlsClientConnection.new(sock, Gio.NetworkAddress.new("localhost", port))
check("type", is_backend_type(tls, "FerrosslClientConnection"), type(tls).__gtype__.name)
check("default-database", tls.get_database() is not None)
tls.set_database(Gio.TlsFileDatabase.new(ca_file))
tls.set_advertised_protocols(["x-ferrossl", "http/1.1"])
seen = []


def on_accept(conn, cert, errors):
    seen.append((cert.props.subject_name, errors, conn.get_peer_certificate_errors()))
    return False


tls.connect("accept-certificate", on_accept)

if mode == "unvalidated":
    tls.set_validation_flags(F(F.VALIDATE_ALL & ~F.UNKNOWN_CA))
    tls.handshake(None)
    check("accepted-without-signal", seen == [], seen)
    check("peer-errors", tls.get_peer_certificate_errors() == F.UNKNOWN_CA, tls.get_peer_certificate_errors())
    tls.close(None)
    sys.exit(0)

if mode == "untrusted":
    try:
        tls.handshake(None)
        check("refused", False, "the handshake succeeded")
    except GLib.Error as e:
        check("refused", e.matches(Gio.tls_error_quark(), Gio.TlsError.BAD_CERTIFICATE), e.message)
    check("signal", len(seen) == 1 and seen[0][1] == F.UNKNOWN_CA, seen)
    check("errors-during-signal", seen[0][2] == F.UNKNOWN_CA, seen)
    check("peer-errors", tls.get_peer_certificate_errors() == F.UNKNOWN_CA)
    sys.exit(0)

tls.handshake(None)
check("no-signal", seen == [], seen)
check("peer-errors", tls.get_peer_certificate_errors() == 0, tls.get_peer_certificate_errors())
peer = tls.get_peer_certificate()
check("peer-certificate", peer is not None and "CN=localhost" in (peer.props.subject_name or ""), peer and peer.props.subject_name)
print("subject", peer.props.subject_name)
version = tls.get_protocol_version()
check("protocol-version", version in (Gio.TlsProtocolVersion.TLS_1_2, Gio.TlsProtocolVersion.TLS_1_3), version)
print("version", version.value_nick)
suite = tls.get_ciphersuite_name()
check("ciphersuite", suite is not None and suite.startswith("TLS_"), suite)
print("ciphersuite", suite)
check("alpn", tls.get_negotiated_protocol() == "x-ferrossl", tls.get_negotiated_protocol())

# Before GLib 2.85, PyGObject hands the backend a byte array of element size 0 here; the
# backend must refuse it with an error, not crash. With a fixed GLib, the data comes back.
try:
    _, binding = tls.get_channel_binding_data(Gio.TlsChannelBindingType.EXPORTER)
    check("binding", len(binding) == 32, binding)
except GLib.Error as e:
    check("binding", e.domain == "g-tls-channel-binding-error-quark", e.message)

out = tls.get_output_stream()
out.write_all(b"hello ferrossl\n", None)
inp = Gio.DataInputStream.new(tls.get_input_stream())
line, _ = inp.read_line_utf8(None)
check("echo", line == ("hello ferrossl" if mode == "echo" else "lssorref olleh"), line)
tls.close(None)
check("closed", tls.is_closed() and sock.is_closed())
