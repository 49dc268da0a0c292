"""ferrossl: a memory-safe TLS library with pyOpenSSL's API, on rustls.

``from ferrossl import SSL, crypto`` gives the pyOpenSSL-shaped modules;
``ferrossl.install_as_pyopenssl()`` makes ``import OpenSSL`` resolve to them, so programs
written for pyOpenSSL run unmodified.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types

from . import SSL, crypto, version
from ._native import VERSION as __version__

__all__ = ["SSL", "crypto", "install_as_pyopenssl", "version", "__version__"]


def install_as_pyopenssl() -> None:
    """Makes ``OpenSSL``, ``OpenSSL.SSL``, ``OpenSSL.crypto`` and ``OpenSSL.version`` import
    ferrossl's modules (after the precedent of ``pymysql.install_as_MySQLdb()``).

    Once installed, ferrossl looks like pyOpenSSL to the programs that probe it:
    ``OpenSSL.__version__`` is the pyOpenSSL release whose API ferrossl provides
    (``version.__version__``), and the classes and exceptions of ``SSL`` and ``crypto``
    name ``OpenSSL.SSL`` / ``OpenSSL.crypto`` as their module.
    """
    from . import _util

    if "OpenSSL" in sys.modules and getattr(sys.modules["OpenSSL"], "_ferrossl", False):
        return
    package = types.ModuleType("OpenSSL", __doc__)
    package.__dict__.update(
        SSL=SSL,
        crypto=crypto,
        version=version,
        _util=_util,
        __version__=version.__version__,
        __all__=["SSL", "crypto", "version", "__version__"],
        __path__=[],
        # importlib.util.find_spec("OpenSSL") answers, as for an installed package.
        __spec__=importlib.machinery.ModuleSpec("OpenSSL", None, is_package=True),
        _ferrossl=True,
    )
    for module, name in ((SSL, "OpenSSL.SSL"), (crypto, "OpenSSL.crypto")):
        _claim(module, name)
    sys.modules["OpenSSL"] = package
    sys.modules["OpenSSL.SSL"] = SSL
    sys.modules["OpenSSL.crypto"] = crypto
    sys.modules["OpenSSL.version"] = version
    sys.modules["OpenSSL._util"] = _util


def _claim(module: types.ModuleType, name: str) -> None:
    """Names ``name`` as the module of ``module``'s public classes (ours and the native
    exceptions): libraries check ``type(obj).__module__.startswith("OpenSSL")``."""
    for attr in getattr(module, "__all__", None) or dir(module):
        obj = getattr(module, attr, None)
        if isinstance(obj, type) and obj.__module__.startswith(("ferrossl", "_native")):
            try:
                obj.__module__ = name
            except (AttributeError, TypeError):
                pass
