"""GTlsCertificate and GTlsFileDatabase of the selected backend, checked from Python.

Arguments: CA file, server chain file (leaf then intermediate), its key file, the leaf alone,
an untrusted server certificate, an expired one. Prints "ok <check>" per check passed."""
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

ca_file, chain_file, key_file, leaf_file, untrusted_file, expired_file = sys.argv[1:7]
F = Gio.TlsCertificateFlags
SERVER = Gio.TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name}: {detail}")
    print("ok", name, flush=True)


cert = Gio.TlsCertificate.new_from_files(chain_file, key_file)
check("type", type(cert).__gtype__.name == "FerrosslCertificate", type(cert).__gtype__.name)
check("subject", "CN=" in cert.props.subject_name, cert.props.subject_name)
issuer = cert.get_issuer()
check("chain", issuer is not None and issuer.props.subject_name == cert.props.issuer_name)
check("key", cert.props.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----"))
check("private-key", len(cert.props.private_key) > 0)
check("certificate-der", len(cert.props.certificate) > 100)
check("pem", cert.props.certificate_pem.startswith("-----BEGIN CERTIFICATE-----"))
dns = [bytes(b.get_data()).decode() for b in cert.get_dns_names()]
check("dns-names", dns == ["localhost"], dns)
ips = [a.to_string() for a in cert.get_ip_addresses()]
check("ip-addresses", ips == ["127.0.0.1", "::1"], ips)
before, after = cert.get_not_valid_before(), cert.get_not_valid_after()
now = GLib.DateTime.new_now_utc()
check("validity", before.compare(now) < 0 < after.compare(now))

leaf = Gio.TlsCertificate.new_from_file(leaf_file)
check("no-key", leaf.props.private_key_pem is None and leaf.get_issuer() is None)
check("is-same", leaf.is_same(Gio.TlsCertificate.new_from_pem(leaf.props.certificate_pem, -1)))
try:
    Gio.TlsCertificate.new_from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", -1)
    check("garbage-refused", False)
except GLib.Error as e:
    check("garbage-refused", e.matches(Gio.tls_error_quark(), Gio.TlsError.BAD_CERTIFICATE), e.message)

ca = Gio.TlsCertificate.new_from_file(ca_file)
localhost = Gio.NetworkAddress.new("localhost", 443)
check("verify-ok", cert.verify(localhost, ca) == 0, cert.verify(localhost, ca))
check("verify-unknown-ca", leaf.verify(localhost, cert) == F.UNKNOWN_CA)
check("verify-identity", cert.verify(Gio.NetworkAddress.new("example.com", 443), None) == F.BAD_IDENTITY)

db = Gio.TlsFileDatabase.new(ca_file)
check("db-type", type(db).__gtype__.name == "FerrosslFileDatabase")
check("db-anchors", db.props.anchors == ca_file)
flags = db.verify_chain(cert, SERVER, localhost, None, Gio.TlsDatabaseVerifyFlags.NONE, None)
check("db-trusted", flags == 0, flags)
flags = db.verify_chain(cert, SERVER, Gio.NetworkAddress.new("example.com", 443), None, 0, None)
check("db-bad-identity", flags == F.BAD_IDENTITY, flags)
untrusted = Gio.TlsCertificate.new_from_file(untrusted_file)
flags = db.verify_chain(untrusted, SERVER, localhost, None, 0, None)
check("db-unknown-ca", flags == F.UNKNOWN_CA, flags)
expired = Gio.TlsCertificate.new_from_file(expired_file)
flags = db.verify_chain(expired, SERVER, localhost, None, 0, None)
check("db-expired", flags == F.EXPIRED, flags)
root = db.lookup_certificate_issuer(cert.get_issuer(), None, Gio.TlsDatabaseLookupFlags.NONE, None)
check("db-issuer", root is not None and root.is_same(ca))
check("db-no-issuer", db.lookup_certificate_issuer(untrusted, None, 0, None) is None)
handle = db.create_certificate_handle(ca)
check("db-handle", db.lookup_certificate_for_handle(handle, None, 0, None).is_same(ca), handle)

loop = GLib.MainLoop()
result = {}


def verified(source, res):
    result["flags"] = source.verify_chain_finish(res)
    loop.quit()


db.verify_chain_async(untrusted, SERVER, localhost, None, 0, None, verified)
GLib.timeout_add_seconds(10, loop.quit)
loop.run()
check("db-async", result.get("flags") == F.UNKNOWN_CA, result)

default = Gio.TlsBackend.get_default().get_default_database()
check("default-db", type(default).__gtype__.name == "FerrosslFileDatabase")
check("default-db-shared", default == Gio.TlsBackend.get_default().get_default_database())
flags = default.verify_chain(cert, SERVER, localhost, None, 0, None)
check("default-db-unknown-ca", flags == F.UNKNOWN_CA, flags)
