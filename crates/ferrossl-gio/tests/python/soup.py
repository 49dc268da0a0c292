"""libsoup 3 over the selected backend: GET https://localhost:PORT/ from an `s_server -www`
(openssl's or ferrossl's) with the test CA as the session's TLS database, synchronously and
asynchronously; or, with "untrusted", the fetch must fail on the server's certificate.

Arguments: port, CA file, "trusted" or "untrusted", and what the page must say ("-www" for
openssl's, "ferrossl s_server" for ferrossl's). Prints "ok <check>" per check passed."""
import os
import sys

import gi

gi.require_version("Gio", "2.0")
gi.require_version("Soup", "3.0")
from gi.repository import Gio, GLib, Soup  # noqa: E402

port, ca_file, mode, says = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
url = f"https://localhost:{port}/"


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name}: {detail}")
    print("ok", name, flush=True)


def session():
    s = Soup.Session.new()
    s.set_timeout(10)
    s.set_tls_database(Gio.TlsFileDatabase.new(ca_file))
    return s


# The backend GIO_USE_TLS names (ours, or glib-networking's GnuTLS one) is the one in use.
backend = type(Gio.TlsBackend.get_default()).__gtype__.name
if os.environ.get("GIO_USE_TLS") == "gnutls":
    check("backend", "Gnutls" in backend, backend)
else:
    check("backend", backend == "FerrosslBackend", backend)

if mode == "untrusted":
    msg = Soup.Message.new("GET", url)
    refused = []
    msg.connect("accept-certificate", lambda m, cert, errors: refused.append(errors) or False)
    try:
        session().send_and_read(msg, None)
        check("refused", False, "the fetch succeeded")
    except GLib.Error as e:
        check("refused", e.matches(Gio.tls_error_quark(), Gio.TlsError.BAD_CERTIFICATE), e.message)
    check("signal", refused == [Gio.TlsCertificateFlags.UNKNOWN_CA], refused)
    sys.exit(0)

msg = Soup.Message.new("GET", url)
body = session().send_and_read(msg, None)
page = bytes(body.get_data()).decode(errors="replace")
check("status", msg.get_status() == Soup.Status.OK, msg.get_status())
check("page", "s_server" in page and says in page, page[:200])
check("peer-errors", msg.get_tls_peer_certificate_errors() == 0, msg.get_tls_peer_certificate_errors())
check("version", msg.get_tls_protocol_version() == Gio.TlsProtocolVersion.TLS_1_3, msg.get_tls_protocol_version())
check("ciphersuite", (msg.get_tls_ciphersuite_name() or "").startswith("TLS_"), msg.get_tls_ciphersuite_name())

# The asynchronous API: libsoup reads and writes through GPollableInputStream and
# GPollableOutputStream, in the main loop.
loop = GLib.MainLoop()
got = {}


def done(sess, result):
    try:
        got["body"] = bytes(sess.send_and_read_finish(result).get_data())
    except GLib.Error as e:
        got["error"] = e.message
    loop.quit()


async_msg = Soup.Message.new("GET", url)
async_session = session()
async_session.send_and_read_async(async_msg, GLib.PRIORITY_DEFAULT, None, done)
GLib.timeout_add_seconds(15, loop.quit)
loop.run()
check("async", "body" in got and async_msg.get_status() == Soup.Status.OK, got.get("error", got))
check("async-page", says.encode() in got["body"], got["body"][:200])
