"""g_dtls_connection_handshake_async over UDP against a DTLS server the CA does not vouch for.

Arguments: port, CA file, "refuse" or "accept" (what accept-certificate answers). The signal
must reach us once, in the main thread, with UNKNOWN_CA; the handshake then fails with
BAD_CERTIFICATE or succeeds. (PyGObject cannot pass GDatagramBased's message arrays, so no data
moves here.) Prints "ok <check>" per check passed."""
import sys
import threading

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

port, ca_file, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
F = Gio.TlsCertificateFlags


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name}: {detail}")
    print("ok", name, flush=True)


# No socket timeout: GLib refuses datagram calls on a socket that has one.
sock = Gio.Socket.new(Gio.SocketFamily.IPV4, Gio.SocketType.DATAGRAM, Gio.SocketProtocol.UDP)
sock.connect(Gio.InetSocketAddress.new_from_string("127.0.0.1", port), None)
dtls = Gio.DtlsClientConnection.new(sock, Gio.NetworkAddress.new("localhost", port))
check("type", type(dtls).__gtype__.name == "FerrosslDtlsClientConnection", type(dtls).__gtype__.name)
dtls.set_database(Gio.TlsFileDatabase.new(ca_file))
asked = []


def on_accept(conn, cert, errors):
    asked.append((errors, threading.current_thread() is threading.main_thread()))
    return mode == "accept"


dtls.connect("accept-certificate", on_accept)
loop = GLib.MainLoop()
result = {}


def done(conn, res):
    try:
        result["ok"] = conn.handshake_finish(res)
    except GLib.Error as e:
        result["error"] = e
    loop.quit()


dtls.handshake_async(GLib.PRIORITY_DEFAULT, None, done)
GLib.timeout_add_seconds(10, loop.quit)
loop.run()
check("asked-once", len(asked) == 1 and asked[0][0] == F.UNKNOWN_CA, asked)
check("asked-in-main-thread", asked[0][1], asked)
if mode == "refuse":
    error = result.get("error")
    check("refused", error is not None and error.matches(Gio.tls_error_quark(), Gio.TlsError.BAD_CERTIFICATE), result)
else:
    check("accepted", result.get("ok") is True, result)
    check("version", dtls.get_protocol_version() == Gio.TlsProtocolVersion.DTLS_1_2, dtls.get_protocol_version())
    dtls.close(None)
    check("closed", True)
