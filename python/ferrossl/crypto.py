"""The part of pyOpenSSL's ``OpenSSL.crypto`` that SSL users touch.

Certificates and keys are parsed and checked by ferrossl itself. Building certificates
(``X509()`` then ``set_*`` and ``sign``) and generating keys use the ``cryptography`` package,
which is then required; everything else works without it.
"""

from __future__ import annotations

import datetime
import typing

from . import _native

__all__ = [
    "FILETYPE_ASN1",
    "FILETYPE_PEM",
    "FILETYPE_TEXT",
    "TYPE_DSA",
    "TYPE_EC",
    "TYPE_RSA",
    "X509",
    "Error",
    "PKey",
    "X509Name",
    "X509Store",
    "X509StoreContext",
    "X509StoreContextError",
    "X509StoreFlags",
    "dump_certificate",
    "dump_privatekey",
    "dump_publickey",
    "get_elliptic_curve",
    "get_elliptic_curves",
    "load_certificate",
    "load_privatekey",
    "load_publickey",
]

FILETYPE_PEM = 1
FILETYPE_ASN1 = 2
FILETYPE_TEXT = 2**16 - 1

TYPE_RSA = 6
TYPE_DSA = 116
TYPE_DH = 28
TYPE_EC = 408
TYPE_ED25519 = 1087

Error = _native.CryptoError


def _cryptography(what: str) -> typing.Any:
    try:
        import cryptography  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise Error(
            [("ferrossl", "", f"{what} needs the 'cryptography' package")]
        ) from e
    return cryptography


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class _EllipticCurve:
    """A named elliptic curve (pyOpenSSL's ``_EllipticCurve``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _EllipticCurve) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<Curve {self.name!r}>"


def get_elliptic_curves() -> set[_EllipticCurve]:
    """The curves ferrossl's key exchange offers."""
    return {_EllipticCurve(n) for n in _native.supported_curves()}


def get_elliptic_curve(name: str) -> _EllipticCurve:
    """A supported curve by its OpenSSL short name; ValueError otherwise."""
    for curve in get_elliptic_curves():
        if curve.name == name:
            return curve
    raise ValueError("unknown curve name", name)


class PKey:
    """A key: private (usable for TLS) or, from a certificate, public only."""

    def __init__(self) -> None:
        self._native: _native.NativePKey | None = None
        self._public_spki: bytes | None = None
        self._only_public = False
        self._initialized = False

    @classmethod
    def _from_native(cls, native: _native.NativePKey) -> PKey:
        key = cls()
        key._native = native
        key._initialized = True
        return key

    @classmethod
    def _from_public(cls, spki: bytes) -> PKey:
        key = cls()
        key._public_spki = spki
        key._only_public = True
        key._initialized = True
        return key

    def _spki(self) -> bytes:
        if self._native is not None:
            return self._native.public_spki()
        assert self._public_spki is not None
        return self._public_spki

    def generate_key(self, type: int, bits: int) -> None:
        """Generates a key pair (RSA or EC) with ``cryptography``."""
        if not isinstance(type, int):
            raise TypeError("type must be an integer")
        if not isinstance(bits, int):
            raise TypeError("bits must be an integer")
        _cryptography("PKey.generate_key")
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if type == TYPE_RSA:
            if bits <= 0:
                raise ValueError("Invalid number of bits")
            key = rsa.generate_private_key(65537, bits)
        elif type == TYPE_EC:
            curves = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}
            if bits not in curves:
                raise ValueError("EC keys are 256, 384 or 521 bits")
            key = ec.generate_private_key(curves[bits])
        elif type == TYPE_DSA:
            raise Error([("ferrossl", "", "DSA keys are not supported")])
        else:
            raise Error([("ferrossl", "", "No such key type")])
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._native = _native.NativePKey.from_der(der)
        self._only_public = False
        self._initialized = True

    def check(self) -> bool:
        """Checks the key's consistency (always true for a loaded private key)."""
        if self._only_public:
            raise TypeError("public key only")
        return True

    def type(self) -> int:
        """The key type (TYPE_RSA, TYPE_EC, TYPE_ED25519)."""
        if self._native is not None:
            return self._native.type_nid()
        return _spki_type(self._spki())

    def bits(self) -> int:
        """The key size in bits."""
        if self._native is not None:
            return self._native.bits()
        return _spki_bits(self._spki())

    def to_cryptography_key(self) -> typing.Any:
        """The key as a ``cryptography`` key object."""
        _cryptography("PKey.to_cryptography_key")
        from cryptography.hazmat.primitives import serialization

        if self._native is not None:
            return serialization.load_der_private_key(self._native.private_der(), None)
        return serialization.load_der_public_key(self._spki())

    @classmethod
    def from_cryptography_key(cls, crypto_key: typing.Any) -> PKey:
        """A PKey from a ``cryptography`` private or public key."""
        _cryptography("PKey.from_cryptography_key")
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import (
            dsa,
            ec,
            ed25519,
            ed448,
            rsa,
        )

        private = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey, dsa.DSAPrivateKey)
        public = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, ed448.Ed448PublicKey, dsa.DSAPublicKey)
        if isinstance(crypto_key, private):
            der = crypto_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return cls._from_native(_native.NativePKey.from_der(der))
        if isinstance(crypto_key, public):
            der = crypto_key.public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            return cls._from_public(der)
        raise TypeError("Unsupported key type")


_Key = PKey
_PrivateKey = typing.Any


def _spki_type(spki: bytes) -> int:
    if b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01" in spki:
        return TYPE_RSA
    if b"\x2a\x86\x48\xce\x3d\x02\x01" in spki:
        return TYPE_EC
    if b"\x2b\x65\x70" in spki:
        return TYPE_ED25519
    return TYPE_DSA


def _spki_bits(spki: bytes) -> int:
    _cryptography("PKey.bits of a public key")
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_der_public_key(spki)
    return getattr(key, "key_size", 253)


_ATTRIBUTE_OIDS = {
    "C": "2.5.4.6",
    "ST": "2.5.4.8",
    "L": "2.5.4.7",
    "O": "2.5.4.10",
    "OU": "2.5.4.11",
    "CN": "2.5.4.3",
    "emailAddress": "1.2.840.113549.1.9.1",
    "serialNumber": "2.5.4.5",
    "SN": "2.5.4.4",
    "GN": "2.5.4.42",
    "title": "2.5.4.12",
    "initials": "2.5.4.43",
    "DC": "0.9.2342.19200300.100.1.25",
    "UID": "0.9.2342.19200300.100.1.1",
    "street": "2.5.4.9",
    "dnQualifier": "2.5.4.46",
}
_LONG_NAMES = {
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "commonName": "CN",
    "surname": "SN",
    "givenName": "GN",
}


class X509Name:
    """A distinguished name; attributes read and write by short or long name (``name.CN``)."""

    def __init__(self, name: X509Name) -> None:
        if not isinstance(name, X509Name):
            raise TypeError("name must be an X509Name")
        object.__setattr__(self, "_entries", list(name._entries))

    @classmethod
    def _from_entries(cls, entries: list[tuple[str, str]]) -> X509Name:
        obj = cls.__new__(cls)
        object.__setattr__(obj, "_entries", list(entries))
        return obj

    def __getattr__(self, name: str) -> str | None:
        short = _LONG_NAMES.get(name, name)
        if short not in _ATTRIBUTE_OIDS:
            raise AttributeError(name)
        for key, value in reversed(self._entries):
            if key == short:
                return value
        return None

    def __setattr__(self, name: str, value: typing.Any) -> None:
        short = _LONG_NAMES.get(name, name)
        if short not in _ATTRIBUTE_OIDS:
            raise AttributeError(f"No such attribute {name!r}")
        if not isinstance(value, (str, bytes)):
            raise TypeError(f"attribute value must be a string, not {type(value).__name__}")
        entries = [e for e in self._entries if e[0] != short]
        entries.append((short, _text(value)))
        object.__setattr__(self, "_entries", entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, X509Name):
            return NotImplemented
        return self._entries == other._entries

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, X509Name):
            return NotImplemented
        return self._entries != other._entries

    def __lt__(self, other: X509Name) -> bool:
        if not isinstance(other, X509Name):
            return NotImplemented
        return self._entries < other._entries

    def __hash__(self) -> int:
        return hash(tuple(self._entries))

    def __repr__(self) -> str:
        oneline = "".join(f"/{k}={v}" for k, v in self._entries)
        return f"<X509Name object '{oneline}'>"

    def get_components(self) -> list[tuple[bytes, bytes]]:
        """The (name, value) pairs, as bytes."""
        return [(k.encode(), v.encode()) for k, v in self._entries]

    def der(self) -> bytes:
        """The DER encoding (needs ``cryptography`` for a name built by hand)."""
        return self._to_cryptography().public_bytes()

    def _to_cryptography(self) -> typing.Any:
        _cryptography("X509Name.der")
        from cryptography import x509

        return x509.Name(
            [x509.NameAttribute(x509.ObjectIdentifier(_ATTRIBUTE_OIDS[k]), v) for k, v in self._entries]
        )


def _asn1_time(value: datetime.datetime) -> bytes:
    return value.strftime("%Y%m%d%H%M%SZ").encode()


def _parse_asn1_time(value: bytes) -> datetime.datetime:
    text = value.decode("ascii")
    for fmt in ("%Y%m%d%H%M%SZ", "%Y%m%d%H%M%S%z"):
        try:
            parsed = datetime.datetime.strptime(text, fmt)
            return parsed.replace(tzinfo=None) if parsed.tzinfo is None else parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        except ValueError:
            continue
    raise ValueError("invalid timestamp")


class X509:
    """An X.509 certificate. Loaded certificates are read-only views of their DER; a
    certificate built with ``X509()`` and the setters is produced by ``sign``."""

    def __init__(self) -> None:
        self._native: _native.NativeX509 | None = None
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
        self._draft: dict[str, typing.Any] = {
            "version": 2,
            "serial": 0,
            "subject": X509Name._from_entries([]),
            "issuer": X509Name._from_entries([]),
            "not_before": now,
            "not_after": now,
            "pubkey": None,
            "extensions": [],
        }

    @classmethod
    def _from_native(cls, native: _native.NativeX509) -> X509:
        cert = cls.__new__(cls)
        cert._native = native
        subject, _ = native.subject()
        issuer, _ = native.issuer()
        cert._draft = {
            "version": native.version(),
            "serial": int.from_bytes(native.serial(), "big"),
            "subject": X509Name._from_entries(subject),
            "issuer": X509Name._from_entries(issuer),
            "not_before": _parse_asn1_time(native.not_before().encode()),
            "not_after": _parse_asn1_time(native.not_after().encode()),
            "pubkey": None,
            "extensions": [],
        }
        return cert

    def _signed(self) -> _native.NativeX509:
        if self._native is None:
            raise Error([("ferrossl", "", "the certificate is not signed yet")])
        return self._native

    def _edit(self, key: str, value: typing.Any) -> None:
        self._draft[key] = value
        self._native = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, X509):
            return NotImplemented
        return self._native is not None and other._native is not None and self._native.to_der() == other._native.to_der()

    def __hash__(self) -> int:
        return hash(self._native.to_der()) if self._native is not None else id(self)

    def __repr__(self) -> str:
        return f"<X509 subject={self._draft['subject']!r}>"

    def to_cryptography(self) -> typing.Any:
        """The certificate as a ``cryptography`` Certificate."""
        _cryptography("X509.to_cryptography")
        from cryptography import x509

        return x509.load_der_x509_certificate(self._signed().to_der())

    @classmethod
    def from_cryptography(cls, crypto_cert: typing.Any) -> X509:
        """An X509 from a ``cryptography`` Certificate."""
        _cryptography("X509.from_cryptography")
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        if not isinstance(crypto_cert, x509.Certificate):
            raise TypeError("Must be a certificate")
        return cls._from_native(_native.NativeX509.from_der(crypto_cert.public_bytes(Encoding.DER)))

    def get_version(self) -> int:
        return self._draft["version"]

    def set_version(self, version: int) -> None:
        if not isinstance(version, int):
            raise TypeError("version must be an int")
        if version not in (0, 2):
            raise ValueError("Invalid version. The only valid versions are 0 and 2")
        self._edit("version", version)

    def get_serial_number(self) -> int:
        return self._draft["serial"]

    def set_serial_number(self, serial: int) -> None:
        if not isinstance(serial, int):
            raise TypeError("serial must be an integer")
        self._edit("serial", serial)

    def get_subject(self) -> X509Name:
        return self._draft["subject"]

    def set_subject(self, subject: X509Name) -> None:
        if not isinstance(subject, X509Name):
            raise TypeError("subject must be an X509Name")
        self._edit("subject", X509Name(subject))

    def get_issuer(self) -> X509Name:
        return self._draft["issuer"]

    def set_issuer(self, issuer: X509Name) -> None:
        if not isinstance(issuer, X509Name):
            raise TypeError("issuer must be an X509Name")
        self._edit("issuer", X509Name(issuer))

    def get_pubkey(self) -> PKey:
        if self._native is not None:
            return PKey._from_public(self._native.public_key_spki())
        if self._draft["pubkey"] is None:
            raise Error([("ferrossl", "", "no public key set")])
        return self._draft["pubkey"]

    def set_pubkey(self, pkey: PKey) -> None:
        if not isinstance(pkey, PKey):
            raise TypeError("pkey must be a PKey")
        self._edit("pubkey", pkey)

    def get_notBefore(self) -> bytes | None:
        return _asn1_time(self._draft["not_before"])

    def get_notAfter(self) -> bytes | None:
        return _asn1_time(self._draft["not_after"])

    def set_notBefore(self, when: bytes) -> None:
        if not isinstance(when, bytes):
            raise TypeError("when must be a byte string")
        self._edit("not_before", _parse_asn1_time(when))

    def set_notAfter(self, when: bytes) -> None:
        if not isinstance(when, bytes):
            raise TypeError("when must be a byte string")
        self._edit("not_after", _parse_asn1_time(when))

    def gmtime_adj_notBefore(self, amount: int) -> None:
        if not isinstance(amount, int):
            raise TypeError("amount must be an integer")
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
        self._edit("not_before", now + datetime.timedelta(seconds=amount))

    def gmtime_adj_notAfter(self, amount: int) -> None:
        if not isinstance(amount, int):
            raise TypeError("amount must be an integer")
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
        self._edit("not_after", now + datetime.timedelta(seconds=amount))

    def has_expired(self) -> bool:
        if self._native is not None:
            return self._native.has_expired()
        return self._draft["not_after"] < datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    def digest(self, digest_name: str | bytes) -> bytes:
        try:
            return self._signed().digest(_text(digest_name)).encode()
        except ValueError:
            raise ValueError("No such digest method") from None

    def subject_name_hash(self) -> int:
        _cryptography("X509.subject_name_hash")
        import hashlib

        canonical = self._draft["subject"]._to_cryptography().public_bytes()
        return int.from_bytes(hashlib.sha1(canonical).digest()[:4], "little")

    def get_signature_algorithm(self) -> bytes:
        oid = self.to_cryptography().signature_algorithm_oid
        return oid._name.encode()

    def get_extension_count(self) -> int:
        return len(self.to_cryptography().extensions)

    def add_extensions(self, extensions: typing.Iterable[typing.Any]) -> None:
        self._edit("extensions", self._draft["extensions"] + list(extensions))

    def sign(self, pkey: PKey, digest: str | bytes) -> None:
        """Signs the certificate with ``pkey`` (needs ``cryptography``)."""
        if not isinstance(pkey, PKey):
            raise TypeError("pkey must be a PKey")
        if pkey._only_public:
            raise ValueError("Key only has public part")
        _cryptography("X509.sign")
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.serialization import Encoding

        algorithms = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512(), "sha1": hashes.SHA1(), "sha224": hashes.SHA224()}
        name = _text(digest).lower().replace("-", "")
        if name not in algorithms:
            raise ValueError("No such digest method")
        d = self._draft
        subject_key = d["pubkey"] or pkey
        builder = (
            x509.CertificateBuilder()
            .subject_name(d["subject"]._to_cryptography())
            .issuer_name(d["issuer"]._to_cryptography())
            .serial_number(d["serial"] or 1)
            .not_valid_before(d["not_before"])
            .not_valid_after(d["not_after"])
            .public_key(subject_key.to_cryptography_key().public_key() if not subject_key._only_public else subject_key.to_cryptography_key())
        )
        for ext in d["extensions"]:
            builder = builder.add_extension(ext.value if hasattr(ext, "value") else ext, critical=getattr(ext, "critical", False))
        key = pkey.to_cryptography_key()
        signed = builder.sign(key, None if name not in algorithms or type(key).__name__.startswith("Ed") else algorithms[name])
        self._native = _native.NativeX509.from_der(signed.public_bytes(Encoding.DER))


class X509StoreFlags:
    """X509_V_FLAG_* values (OpenSSL's)."""

    CRL_CHECK = 0x4
    CRL_CHECK_ALL = 0x8
    IGNORE_CRITICAL = 0x10
    X509_STRICT = 0x20
    ALLOW_PROXY_CERTS = 0x40
    POLICY_CHECK = 0x80
    EXPLICIT_POLICY = 0x100
    INHIBIT_MAP = 0x400
    CHECK_SS_SIGNATURE = 0x4000
    PARTIAL_CHAIN = 0x80000


class X509Store:
    """A set of trusted certificates."""

    def __init__(self) -> None:
        self._native = _native.NativeStore()

    @classmethod
    def _from_native(cls, native: _native.NativeStore) -> X509Store:
        store = cls.__new__(cls)
        store._native = native
        return store

    def add_cert(self, cert: X509) -> None:
        if not isinstance(cert, X509):
            raise TypeError("cert must be an X509")
        self._native.add_cert(cert._signed())

    def add_crl(self, crl: typing.Any) -> None:
        raise Error([("ferrossl", "", "CRLs are not supported")])

    def set_flags(self, flags: int) -> None:
        self._native.set_flags(flags)

    def set_time(self, vfy_time: datetime.datetime) -> None:
        raise Error([("ferrossl", "", "verification time is not settable")])

    def load_locations(self, cafile: typing.Any, capath: typing.Any = None) -> None:
        if cafile is not None:
            self._native.load_file(_text(cafile) if isinstance(cafile, bytes) else str(cafile))
        if capath is not None:
            self._native.load_dir(_text(capath) if isinstance(capath, bytes) else str(capath))


class X509StoreContextError(Exception):
    """A certificate failed verification; ``errors`` is [code, depth, text]."""

    def __init__(self, message: str, errors: list[typing.Any], certificate: X509) -> None:
        super().__init__(message)
        self.errors = errors
        self.certificate = certificate


class X509StoreContext:
    """Verifies one certificate against a store."""

    def __init__(self, store: X509Store, certificate: X509, chain: typing.Sequence[X509] | None = None) -> None:
        self._store = store
        self._cert = certificate
        self._chain = list(chain or [])

    def set_store(self, store: X509Store) -> None:
        self._store = store

    def _verify(self) -> list[bytes]:
        code, depth, chain = _native.verify_certificate(
            self._store._native, self._cert._signed(), [c._signed() for c in self._chain]
        )
        if code != 0:
            text = _VERIFY_TEXT.get(code, "certificate verify failed")
            raise X509StoreContextError(text, [code, depth, text], self._cert)
        return chain

    def verify_certificate(self) -> None:
        self._verify()

    def get_verified_chain(self) -> list[X509]:
        return [X509._from_native(_native.NativeX509.from_der(d)) for d in self._verify()]


_VERIFY_TEXT = {
    2: "unable to get issuer certificate",
    7: "certificate signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    24: "invalid CA certificate",
    26: "unsupported certificate purpose",
}


def load_certificate(type: int, buffer: bytes) -> X509:
    """Reads a certificate (FILETYPE_PEM or FILETYPE_ASN1)."""
    if isinstance(buffer, str):
        buffer = buffer.encode("ascii")
    if type == FILETYPE_PEM:
        return X509._from_native(_native.NativeX509.from_pem(buffer))
    if type == FILETYPE_ASN1:
        return X509._from_native(_native.NativeX509.from_der(buffer))
    raise ValueError("type argument must be FILETYPE_PEM or FILETYPE_ASN1")


def dump_certificate(type: int, cert: X509) -> bytes:
    """Writes a certificate."""
    native = cert._signed()
    if type == FILETYPE_PEM:
        return native.to_pem()
    if type == FILETYPE_ASN1:
        return native.to_der()
    if type == FILETYPE_TEXT:
        c = cert.to_cryptography()
        return f"Certificate:\n    Subject: {c.subject.rfc4514_string()}\n    Issuer: {c.issuer.rfc4514_string()}\n".encode()
    raise ValueError("type argument must be FILETYPE_PEM, FILETYPE_ASN1, or FILETYPE_TEXT")


def load_privatekey(type: int, buffer: str | bytes, passphrase: typing.Any = None) -> PKey:
    """Reads a private key; ``passphrase`` is bytes or a callable for encrypted PEM."""
    if isinstance(buffer, str):
        buffer = buffer.encode("ascii")
    if passphrase is not None and not (callable(passphrase) or isinstance(passphrase, bytes)):
        raise TypeError("Last argument must be a byte string or a callable.")
    source = passphrase
    if callable(passphrase):
        source = lambda maxlen, verify: passphrase(verify)  # noqa: E731
    if type == FILETYPE_PEM:
        return PKey._from_native(_native.NativePKey.from_pem(buffer, source))
    if type == FILETYPE_ASN1:
        return PKey._from_native(_native.NativePKey.from_der(buffer))
    raise ValueError("type argument must be FILETYPE_PEM or FILETYPE_ASN1")


def dump_privatekey(type: int, pkey: PKey, cipher: str | None = None, passphrase: typing.Any = None) -> bytes:
    """Writes a private key; with ``cipher`` as encrypted PEM (needs ``cryptography``)."""
    if not isinstance(pkey, PKey):
        raise TypeError("pkey must be a PKey")
    if pkey._native is None:
        raise TypeError("Key only has public part")
    if (cipher is None) != (passphrase is None):
        raise TypeError("if a value is given for cipher one must also be given for passphrase")
    if type == FILETYPE_ASN1:
        return pkey._native.private_der()
    if type == FILETYPE_TEXT:
        return f"Private-Key: ({pkey.bits()} bit)\n".encode()
    if type != FILETYPE_PEM:
        raise ValueError("type argument must be FILETYPE_PEM, FILETYPE_ASN1, or FILETYPE_TEXT")
    if cipher is None:
        return pkey._native.to_pem()
    _cryptography("dump_privatekey with a cipher")
    from cryptography.hazmat.primitives import serialization

    if cipher.lower() not in ("aes-256-cbc", "aes256", "aes-128-cbc", "des-ede3-cbc"):
        raise ValueError("Invalid cipher name")
    secret = passphrase(True) if callable(passphrase) else passphrase
    if not isinstance(secret, bytes):
        raise ValueError("String expected")
    return pkey.to_cryptography_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(secret),
    )


def load_publickey(type: int, buffer: str | bytes) -> PKey:
    """Reads a public key (SubjectPublicKeyInfo)."""
    if isinstance(buffer, str):
        buffer = buffer.encode("ascii")
    _cryptography("load_publickey")
    from cryptography.hazmat.primitives import serialization

    try:
        key = (
            serialization.load_pem_public_key(buffer)
            if type == FILETYPE_PEM
            else serialization.load_der_public_key(buffer)
        )
    except ValueError as e:
        raise Error([("ferrossl", "", str(e))]) from e
    return PKey.from_cryptography_key(key)


def dump_publickey(type: int, pkey: PKey) -> bytes:
    """Writes a public key (SubjectPublicKeyInfo)."""
    spki = pkey._spki()
    if type == FILETYPE_ASN1:
        return spki
    if type == FILETYPE_PEM:
        import base64

        body = base64.encodebytes(spki).replace(b"\n", b"")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return b"-----BEGIN PUBLIC KEY-----\n" + b"\n".join(lines) + b"\n-----END PUBLIC KEY-----\n"
    raise ValueError("type argument must be FILETYPE_PEM or FILETYPE_ASN1")

