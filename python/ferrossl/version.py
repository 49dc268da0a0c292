"""Version information, as ``OpenSSL.version`` has it.

``__version__`` is the pyOpenSSL release whose API ferrossl provides (programs compare it
to decide which features to use); ferrossl's own version is ``ferrossl_version`` (and
``ferrossl.__version__``).
"""

from ._native import VERSION as ferrossl_version

__all__ = [
    "__author__",
    "__copyright__",
    "__email__",
    "__license__",
    "__summary__",
    "__title__",
    "__uri__",
    "__version__",
    "ferrossl_version",
]

#: The pyOpenSSL release whose API this is.
__version__ = "26.4.0"

__title__ = "ferrossl"
__uri__ = "https://crates.io/crates/ferrossl"
__summary__ = "A memory-safe TLS library with pyOpenSSL's API, on rustls"
__author__ = "The ferrossl developers"
__email__ = "ferrossl@users.noreply.invalid"
__license__ = "Apache-2.0 OR MIT"
__copyright__ = "Copyright the ferrossl developers"
