"""GTlsInteraction with the selected backend: a client certificate asked for during the
handshake, and encrypted private keys.

Arguments: port (a TLS server that requires a client certificate from the test CA, naming it),
CA file, client chain file, its key file, the same key encrypted (PKCS#8, any password), and
the mode: "sync" (g_tls_connection_handshake) or "async" (_handshake_async in a main loop)
with an interaction that sets the client certificate; "unhandled" with one that sets none.

- The client connection has no certificate: when the server asks, GIO's backend asks the
  connection's interaction (request_certificate), which sets one on the connection; that one is sent, and a line goes both ways. While asked, the connection's
  accepted-cas lists the CA the server named.
- unhandled: no certificate is sent; the server refuses, and the handshake (TLS 1.2) or the
  first read (TLS 1.3) fails with a G_TLS_ERROR, printed as "tls-error NICK".
- An encrypted private key: GLib's g_tls_certificate_new_from_files refuses it
  (G_TLS_ERROR_BAD_CERTIFICATE) without asking anyone, and so does the backend's certificate
  type given it as private-key-pem: no backend asks an interaction for a PEM key's password.
Prints "ok <check>" per check passed."""
import sys
import threading

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib, GObject  # noqa: E402

port = int(sys.argv[1])
ca_file, chain_file, key_file, encrypted_key_file, mode = sys.argv[2:7]
TLS = Gio.tls_error_quark()


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name}: {detail}")
    print("ok", name, flush=True)


def in_main_thread():
    return threading.current_thread() is threading.main_thread()


# Encrypted private keys.
try:
    Gio.TlsCertificate.new_from_files(chain_file, encrypted_key_file)
    check("encrypted-key-from-files-refused", False, "loaded")
except GLib.Error as e:
    check("encrypted-key-from-files-refused", e.matches(TLS, Gio.TlsError.BAD_CERTIFICATE), e)
with open(chain_file) as f:
    chain_pem = f.read()
with open(encrypted_key_file) as f:
    encrypted_pem = f.read()
certificate_type = Gio.TlsBackend.get_default().get_certificate_type()
try:
    cert = GObject.new(certificate_type, certificate_pem=chain_pem, private_key_pem=encrypted_pem)
    cert.init(None)
    check("encrypted-key-pem-refused", False, "loaded")
except GLib.Error as e:
    check("encrypted-key-pem-refused", e.matches(TLS, Gio.TlsError.BAD_CERTIFICATE), e)

# A certificate asked for during the handshake.
ours = Gio.TlsCertificate.new_from_files(chain_file, key_file)
asked = []


class Interaction(Gio.TlsInteraction):
    def do_request_certificate(self, connection, flags, cancellable):
        cas = connection.get_accepted_cas() or []
        asked.append((in_main_thread(), len(cas)))
        if mode == "unhandled":
            return Gio.TlsInteractionResult.UNHANDLED
        connection.set_certificate(ours)
        return Gio.TlsInteractionResult.HANDLED

    def do_ask_password(self, password, cancellable):
        asked.append("password")
        return Gio.TlsInteractionResult.UNHANDLED


client = Gio.SocketClient.new()
client.set_timeout(10)
sock = client.connect_to_host("127.0.0.1", port, None)
tls = Gio.TlsClientConnection.new(sock, Gio.NetworkAddress.new("localhost", port))
tls.set_database(Gio.TlsFileDatabase.new(ca_file))
tls.set_interaction(Interaction())
check("no-certificate-yet", tls.get_certificate() is None)

result = {}
if mode == "async":
    loop = GLib.MainLoop()

    def done(conn, res):
        try:
            result["ok"] = conn.handshake_finish(res)
        except GLib.Error as e:
            result["error"] = e
        loop.quit()

    tls.handshake_async(GLib.PRIORITY_DEFAULT, None, done)
    GLib.timeout_add_seconds(10, loop.quit)
    loop.run()
else:
    try:
        result["ok"] = tls.handshake(None)
    except GLib.Error as e:
        result["error"] = e

check("asked-once", len(asked) == 1 and asked[0] != "password", asked)
# GIO runs the interaction in the main context it was made in (here the main thread's):
# where the handler ran is printed for the test to judge (glib-networking 2.74 differs).
check("asked-in-main-thread" if asked[0][0] else "asked-in-another-thread", True)
check("accepted-cas-while-asked", asked[0][1] == 1, asked)
if mode == "unhandled":
    error = result.get("error")
    if error is None:
        # TLS 1.3: the server's refusal comes after the client's handshake.
        try:
            tls.get_input_stream().read_bytes(100, None)
        except GLib.Error as e:
            error = e
    check("refused", error is not None and error.domain == "g-tls-error-quark", error)
    # GIO's code for it is CERTIFICATE_REQUIRED; printed for the test to judge (the GnuTLS
    # backend of glib-networking 2.74 says MISC).
    print("tls-error", Gio.TlsError(error.code).value_nick, flush=True)
    sys.exit(0)

check("handshake", result.get("ok") is True, result)
check("certificate-is-the-one-set", tls.get_certificate() == ours)
tls.get_output_stream().write_all(b"hello interaction\n", None)
line, _ = Gio.DataInputStream.new(tls.get_input_stream()).read_line_utf8(None)
check("echo", line == "noitcaretni olleh", line)
tls.close(None)
