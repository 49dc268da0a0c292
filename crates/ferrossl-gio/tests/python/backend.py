"""Prints what GIO made of the TLS backends: the default one and every implementation."""
import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio  # noqa: E402

backend = Gio.TlsBackend.get_default()
print("default", type(backend).__gtype__.name)
print("supports_tls", backend.supports_tls())
print("supports_dtls", backend.supports_dtls())
point = Gio.IOExtensionPoint.lookup("gio-tls-backend")
for ext in point.get_extensions():
    print("extension", ext.get_name(), ext.get_priority())
