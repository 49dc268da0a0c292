"""g_tls_connection_handshake_async against a server the CA does not vouch for.

Arguments: port, CA file, and "refuse" (accept-certificate says no: the handshake fails with
BAD_CERTIFICATE) or "accept" (it says yes: the handshake succeeds, and a line goes both
ways). Either way, accept-certificate and the property notifications must reach us in the
main thread, where the handshake was started. Prints "ok <check>" per check passed."""
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


def in_main_thread():
    return threading.current_thread() is threading.main_thread()


client = Gio.SocketClient.new()
client.set_timeout(10)
sock = client.connect_to_host("127.0.0.1", port, None)
tls = Gio.TlsClientConnection.new(sock, Gio.NetworkAddress.new("localhost", port))
tls.set_database(Gio.TlsFileDatabase.new(ca_file))
asked, notified = [], []


def on_accept(conn, cert, errors):
    asked.append((errors, in_main_thread()))
    return mode == "accept"


tls.connect("accept-certificate", on_accept)
tls.connect("notify::peer-certificate", lambda *_: notified.append(in_main_thread()))
loop = GLib.MainLoop()
result = {}


def done(conn, res):
    try:
        result["ok"] = conn.handshake_finish(res)
    except GLib.Error as e:
        result["error"] = e
    loop.quit()


tls.handshake_async(GLib.PRIORITY_DEFAULT, None, done)
GLib.timeout_add_seconds(10, loop.quit)
loop.run()
check("asked-once", len(asked) == 1 and asked[0][0] == F.UNKNOWN_CA, asked)
check("asked-in-main-thread", asked[0][1], asked)
check("notified-in-main-thread", notified and all(notified), notified)
if mode == "refuse":
    error = result.get("error")
    check("refused", error is not None and error.matches(Gio.tls_error_quark(), Gio.TlsError.BAD_CERTIFICATE), result)
    sys.exit(0)

check("accepted", result.get("ok") is True, result)
check("peer-errors", tls.get_peer_certificate_errors() == F.UNKNOWN_CA, tls.get_peer_certificate_errors())
tls.get_output_stream().write_all(b"accepted anyway\n", None)
line, _ = Gio.DataInputStream.new(tls.get_input_stream()).read_line_utf8(None)
check("echo", line == "yawyna detpecca", line)
tls.close(None)
