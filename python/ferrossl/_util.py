"""pyOpenSSL's private ``OpenSSL._util`` exposes OpenSSL's C bindings (``ffi``, ``lib``).
ferrossl has no OpenSSL underneath: these objects exist so that code importing them loads,
and any use raises a clear error."""

from __future__ import annotations

import typing

from . import SSL


class _NoOpenSSL:
    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> typing.Any:
        # Test suites read ``ffi.NULL`` while they load; give it a value, refuse the rest.
        if name == "NULL":
            return None
        if name in _FEATURES:
            return _FEATURES[name]
        raise AttributeError(f"OpenSSL._util.{self._what}.{name}: ferrossl has no OpenSSL C library underneath")

    def __bool__(self) -> bool:
        return False


#: Feature flags and constants that programs probe, with ferrossl's answers.
_FEATURES: dict[str, typing.Any] = {
    "Cryptography_HAS_KEYLOG": True,
    "Cryptography_HAS_SSL_GET0_GROUP_NAME": True,
    "SSL_MODE_ENABLE_PARTIAL_WRITE": SSL._MODE_ENABLE_PARTIAL_WRITE,
    "SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER": 0x2,
}

ffi = _NoOpenSSL("ffi")
lib = _NoOpenSSL("lib")
