"""ferrossl: a memory-safe TLS library with pyOpenSSL's API, on rustls.

``from ferrossl import SSL, crypto`` gives the pyOpenSSL-shaped modules;
``ferrossl.install_as_pyopenssl()`` makes ``import OpenSSL`` resolve to them, so programs
written for pyOpenSSL run unmodified.
"""

from __future__ import annotations

import sys

from . import SSL, crypto, version
from ._native import VERSION as __version__

__all__ = ["SSL", "crypto", "install_as_pyopenssl", "version", "__version__"]


def install_as_pyopenssl() -> None:
    """Makes ``OpenSSL``, ``OpenSSL.SSL``, ``OpenSSL.crypto`` and ``OpenSSL.version`` import
    ferrossl's modules (after the precedent of ``pymysql.install_as_MySQLdb()``)."""
    from . import _util

    package = sys.modules[__name__]
    sys.modules["OpenSSL"] = package
    sys.modules["OpenSSL.SSL"] = SSL
    sys.modules["OpenSSL.crypto"] = crypto
    sys.modules["OpenSSL.version"] = version
    sys.modules["OpenSSL._util"] = _util
