"""Version information, as ``OpenSSL.version`` has it."""

from ._native import VERSION as __version__

__all__ = ["__author__", "__copyright__", "__email__", "__license__", "__summary__", "__title__", "__uri__", "__version__"]

__title__ = "ferrossl"
__uri__ = "https://crates.io/crates/ferrossl"
__summary__ = "A memory-safe TLS library with pyOpenSSL's API, on rustls"
__author__ = "The ferrossl developers"
__email__ = "ferrossl@users.noreply.invalid"
__license__ = "Apache-2.0 OR MIT"
__copyright__ = "Copyright the ferrossl developers"
