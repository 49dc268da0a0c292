"""Full duplex from two threads: one writes many lines through the connection's output stream
while the main thread reads their reversals from `openssl s_server -rev`. Far more than the
socket buffers hold is in flight both ways, so a write waiting for the peer must not keep the
reader from reading (which the peer waits for before it reads more).

Arguments: port, CA file. Prints "ok <check>" per check passed."""
import os
import sys
import threading

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio  # noqa: E402

port, ca_file = int(sys.argv[1]), sys.argv[2]
LINES, WIDTH = 16000, 1023  # 16 MiB each way


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name}: {detail}")
    print("ok", name, flush=True)


# A deadlock must fail the test, not hang it.
threading.Timer(30, lambda: (print("FAILED duplex: deadlocked", flush=True), os._exit(1))).start()

client = Gio.SocketClient.new()
client.set_timeout(20)
sock = client.connect_to_host("127.0.0.1", port, None)
tls = Gio.TlsClientConnection.new(sock, Gio.NetworkAddress.new("localhost", port))
tls.set_database(Gio.TlsFileDatabase.new(ca_file))
tls.handshake(None)
line = b"a" * (WIDTH - 1) + b"b\n"
written = []


def write():
    out = tls.get_output_stream()
    for _ in range(LINES):
        out.write_all(line, None)
    written.append(True)


writer = threading.Thread(target=write)
writer.start()
reader = Gio.DataInputStream.new(tls.get_input_stream())
reader.set_buffer_size(65536)
received = 0
while received < LINES:
    text, _ = reader.read_line_utf8(None)
    if text is None or text != "b" + "a" * (WIDTH - 1):
        sys.exit(f"FAILED duplex: line {received} is {text!r:.40}")
    received += 1
writer.join()
check("duplex", written == [True] and received == LINES)
tls.close(None)
os._exit(0)
