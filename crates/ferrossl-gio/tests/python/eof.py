"""How a client connection ends, against a server in this process (Python's ssl module on
127.0.0.1) that closes with or without close_notify.

Arguments: certificate chain file, key file, CA file. Prints "ok <check>" per check passed."""
import socket
import ssl
import sys
import threading

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

chain_file, key_file, ca_file = sys.argv[1:4]


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name}: {detail}")
    print("ok", name, flush=True)


def serve(listener, clean):
    """Accepts one client, sends a line, and closes: with close_notify when `clean`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file, key_file)
    conn, _ = listener.accept()
    conn.settimeout(10)
    tls = context.wrap_socket(conn, server_side=True)
    tls.sendall(b"bye\n")
    if clean:
        tls.unwrap().close()
    else:
        tls.close()  # no close_notify: the TCP connection just ends


def session(clean, require_close_notify, explicit_handshake):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = threading.Thread(target=serve, args=(listener, clean))
    server.start()
    client = Gio.SocketClient.new()
    client.set_timeout(10)
    sock = client.connect_to_host("127.0.0.1", port, None)
    tls = Gio.TlsClientConnection.new(sock, Gio.NetworkAddress.new("localhost", port))
    tls.set_database(Gio.TlsFileDatabase.new(ca_file))
    tls.set_require_close_notify(require_close_notify)
    if explicit_handshake:
        tls.handshake(None)
    stream = Gio.DataInputStream.new(tls.get_input_stream())
    line, _ = stream.read_line_utf8(None)
    try:
        end = ("eof", stream.read_bytes(100, None).get_data())
    except GLib.Error as e:
        end = ("error", e)
    # Our close_notify answers a clean server's, which waits for it; to a server that is
    # gone it cannot be sent, but the connection closes all the same.
    try:
        tls.close(None)
    except GLib.Error:
        pass
    check("closed", tls.is_closed() and sock.is_closed())
    server.join(10)
    listener.close()
    return line, end


line, end = session(clean=True, require_close_notify=True, explicit_handshake=False)
check("implicit-handshake", line == "bye", line)
check("close-notify-is-eof", end == ("eof", b""), end)
line, end = session(clean=False, require_close_notify=True, explicit_handshake=True)
check("truncation-detected", end[0] == "error" and end[1].matches(Gio.tls_error_quark(), Gio.TlsError.EOF), end)
line, end = session(clean=False, require_close_notify=False, explicit_handshake=True)
check("truncation-tolerated", end == ("eof", b""), end)
