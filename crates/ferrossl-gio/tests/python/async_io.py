"""Asynchronous writes and reads on a client connection that never ran its handshake: the
first of them runs it (GIO's implicit handshake), without blocking the main loop, through
the connection's pollable streams.

Arguments: port of an `openssl s_server -rev`, CA file. Prints "ok <check>" per check passed."""
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

port, ca_file = int(sys.argv[1]), sys.argv[2]


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name}: {detail}")
    print("ok", name, flush=True)


client = Gio.SocketClient.new()
client.set_timeout(10)
sock = client.connect_to_host("127.0.0.1", port, None)
tls = Gio.TlsClientConnection.new(sock, Gio.NetworkAddress.new("localhost", port))
tls.set_database(Gio.TlsFileDatabase.new(ca_file))
check("pollable", tls.get_input_stream().can_poll() and tls.get_output_stream().can_poll())
loop = GLib.MainLoop()
ticks = []  # the main loop keeps turning while the handshake waits for the peer
GLib.timeout_add(5, lambda: ticks.append(1) or True)
result = {}


def read_done(stream, res):
    try:
        result["line"] = stream.read_line_finish_utf8(res)[0]
    except GLib.Error as e:
        result["error"] = e
    loop.quit()


def write_done(stream, res):
    try:
        stream.write_all_finish(res)
    except GLib.Error as e:
        result["error"] = e
        loop.quit()
        return
    reader = Gio.DataInputStream.new(tls.get_input_stream())
    reader.read_line_async(GLib.PRIORITY_DEFAULT, None, read_done)


tls.get_output_stream().write_all_async(b"hello async\n", GLib.PRIORITY_DEFAULT, None, write_done)
GLib.timeout_add_seconds(10, loop.quit)
loop.run()
check("echo", result.get("line") == "cnysa olleh", result)
check("handshake-done", tls.get_protocol_version() != Gio.TlsProtocolVersion.UNKNOWN)
print("ticks", len(ticks))
tls.close(None)
