"""ferrossl's Python module beside pyOpenSSL, the stdlib ``ssl`` module and pyrtls.

Each client/server pair runs in memory in one thread (memory BIOs; pyrtls's sans-IO
connections), TLS 1.3 with each library's default suite and key exchange, the server holding
an ECDSA P-256 certificate the client verifies. Repetitions are interleaved across the
libraries and each cell is the median with min-max, printed as a markdown table like the rest
of ``ferrossl-bench``. ``--quick`` runs every row once, briefly, to show that it works.

    python bench.py --cert CHAIN.pem --key KEY.pem --ca CA.pem [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import ssl
import statistics
import sys
import time
from typing import Any, Callable

MESSAGE = b"x" * 64
BULK_BYTES = 1 << 20
BULK_WRITE = 16384


class PyOpenSSLShaped:
    """pyOpenSSL's ``SSL`` API over memory BIOs: pyOpenSSL itself and ferrossl's module."""

    def __init__(self, module: Any, cert: str, key: str, ca: str) -> None:
        self.SSL = module
        self.server = module.Context(module.TLS_METHOD)
        self.server.use_certificate_chain_file(cert)
        self.server.use_privatekey_file(key)
        self.client = module.Context(module.TLS_METHOD)
        self.client.load_verify_locations(ca)
        self.client.set_verify(module.VERIFY_PEER, None)
        for ctx in (self.server, self.client):
            ctx.set_min_proto_version(module.TLS1_3_VERSION)
            ctx.set_max_proto_version(module.TLS1_3_VERSION)

    def _move(self, src: Any, dst: Any) -> None:
        while True:
            try:
                data = src.bio_read(65536)
            except self.SSL.WantReadError:
                return
            dst.bio_write(data)

    def _step(self, conn: Any) -> bool:
        try:
            conn.do_handshake()
            return True
        except self.SSL.WantReadError:
            return False

    def pair(self) -> tuple[Any, Any]:
        c = self.SSL.Connection(self.client, None)
        c.set_connect_state()
        c.set_tlsext_host_name(b"localhost")
        s = self.SSL.Connection(self.server, None)
        s.set_accept_state()
        c_done = s_done = False
        while not (c_done and s_done):
            c_done = self._step(c) or c_done
            self._move(c, s)
            s_done = self._step(s) or s_done
            self._move(s, c)
        return c, s

    def send(self, src: Any, dst: Any, data: bytes) -> None:
        src.sendall(data)
        self._move(src, dst)

    def recv(self, conn: Any) -> int:
        """Reads everything ``conn`` has; returns how many bytes."""
        got = 0
        while True:
            try:
                got += len(conn.recv(65536))
            except self.SSL.WantReadError:
                return got


class Stdlib:
    """The stdlib ``ssl`` module: SSLObject over MemoryBIO pairs."""

    def __init__(self, cert: str, key: str, ca: str) -> None:
        self.server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server.load_cert_chain(cert, key)
        self.client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.client.load_verify_locations(ca)
        for ctx in (self.server, self.client):
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3

    @staticmethod
    def _step(obj: ssl.SSLObject) -> bool:
        try:
            obj.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    def pair(self) -> tuple[Any, Any]:
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        c = self.client.wrap_bio(c_in, c_out, server_hostname="localhost")
        s = self.server.wrap_bio(s_in, s_out, server_side=True)
        # Each end is (object, its outgoing BIO, the peer's incoming BIO).
        c_end, s_end = (c, c_out, s_in), (s, s_out, c_in)
        c_done = s_done = False
        while not (c_done and s_done):
            c_done = self._step(c) or c_done
            s_in.write(c_out.read())
            s_done = self._step(s) or s_done
            c_in.write(s_out.read())
        return c_end, s_end

    def send(self, src: Any, dst: Any, data: bytes) -> None:
        obj, out, peer_in = src
        obj.write(data)
        peer_in.write(out.read())

    def recv(self, end: Any) -> int:
        obj = end[0]
        got = 0
        while True:
            try:
                got += len(obj.read(65536))
            except ssl.SSLWantReadError:
                return got


def pem_blocks(path: str) -> list[str]:
    """The PEM blocks of a file, each with its armour."""
    text = open(path, encoding="ascii").read()
    end = "-----END CERTIFICATE-----"
    return [block + end + "\n" for block in text.split(end) if "-----BEGIN" in block]


class Pyrtls:
    """pyrtls's sans-IO ClientConnection/ServerConnection."""

    def __init__(self, module: Any, cert: str, key: str, ca: str) -> None:
        self.m = module
        self.server = module.ServerConfig(pem_blocks(cert), open(key, encoding="ascii").read())
        self.roots = pem_blocks(ca)
        self.buf = bytearray(65536)

    def _move(self, src: Any, dst: Any) -> bool:
        moved = False
        while src.writable():
            data = bytes(memoryview(self.buf)[: src.write_tls_into(self.buf)])
            while data:  # read_tls takes bytes only
                data = data[dst.read_tls(data) :]
                dst.process_new_packets()
            moved = True
        return moved

    def pair(self) -> tuple[Any, Any]:
        # A ClientConfig keeps the sessions its connections got and the next connection
        # resumes one (no certificate, no signature), with no way to turn that off: a fresh
        # config per pair (about 1.5 µs) keeps every handshake a full one, as in the other
        # columns.
        client = self.m.ClientConfig(platform_verifier=False, custom_roots=self.roots)
        c = self.m.ClientConnection(client, "localhost")
        s = self.m.ServerConnection(self.server)
        # No handshake flag is exposed: the handshake is over when a round moves nothing.
        while self._move(c, s) | self._move(s, c):
            pass
        return c, s

    def send(self, src: Any, dst: Any, data: bytes) -> None:
        src.write(data)
        self._move(src, dst)

    def recv(self, conn: Any) -> int:
        got = 0
        while True:
            try:
                n = conn.read_into(self.buf)
            except ValueError:  # pyrtls's "operation would block": nothing buffered
                return got
            if n == 0:
                return got
            got += n


def rate(seconds: float, op: Callable[[], Any]) -> float:
    """Operations per second of ``op`` run for ``seconds`` (at least twice)."""
    start = time.perf_counter()
    n = 0
    while n < 2 or time.perf_counter() - start < seconds:
        op()
        n += 1
    return n / (time.perf_counter() - start)


def handshakes(impl: Any, seconds: float) -> float:
    return rate(seconds, impl.pair)


def exchange(impl: Any, c: Any, s: Any) -> None:
    impl.send(c, s, MESSAGE)
    assert impl.recv(s) == len(MESSAGE)
    impl.send(s, c, MESSAGE)
    assert impl.recv(c) == len(MESSAGE)


def round_trip_us(impl: Any, seconds: float) -> float:
    """Microseconds for a 64-byte message to go to the server and back."""
    c, s = impl.pair()
    exchange(impl, c, s)  # the server's TLS 1.3 tickets reach the client here
    return 1e6 / rate(seconds, lambda: exchange(impl, c, s))


def bulk_mb_s(impl: Any, seconds: float) -> float:
    """MB/s of 1 MiB sent client to server in 16 KiB writes, each read as it arrives."""
    c, s = impl.pair()
    chunk = b"\x5a" * BULK_WRITE

    def transfer() -> None:
        for _ in range(BULK_BYTES // BULK_WRITE):
            impl.send(c, s, chunk)
            assert impl.recv(s) == BULK_WRITE

    return rate(seconds, transfer) * BULK_BYTES / 1e6


def implementations(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(column name, implementation or the reason it is missing), ferrossl first."""
    files = (args.cert, args.key, args.ca)
    found: list[tuple[str, Any]] = []
    for name, module, make in [
        ("ferrossl", "ferrossl.SSL", lambda m: PyOpenSSLShaped(m, *files)),
        ("pyOpenSSL", "OpenSSL.SSL", lambda m: PyOpenSSLShaped(m, *files)),
        ("ssl", "ssl", lambda m: Stdlib(*files)),
        ("pyrtls", "pyrtls", lambda m: Pyrtls(m, *files)),
    ]:
        try:
            found.append((name, make(importlib.import_module(module))))
        except ImportError as e:
            if name == "ferrossl":
                sys.exit(f"ferrossl's module is required: {e}")
            found.append((name, f"not installed ({e})"))
    return found


def cell(samples: list[float] | str, unit: str) -> str:
    if isinstance(samples, str):
        return f"n/a: {samples}"
    # Small values (a round trip in µs) keep a decimal, so that their ratios can be read.
    digits = 1 if statistics.median(samples) < 100 else 0
    low, mid, high = min(samples), statistics.median(samples), max(samples)
    return f"{mid:.{digits}f} {unit} ({low:.{digits}f}–{high:.{digits}f})"


def ratio(a: list[float] | str, b: list[float] | str) -> str:
    if isinstance(a, str) or isinstance(b, str):
        return "n/a"
    return f"{statistics.median(a) / statistics.median(b):.2f}×"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True, help="server certificate chain, PEM")
    parser.add_argument("--key", required=True, help="server private key, PEM")
    parser.add_argument("--ca", required=True, help="the root the client trusts, PEM")
    parser.add_argument("--quick", action="store_true", help="every row once, briefly")
    args = parser.parse_args()
    seconds, reps = (0.02, 1) if args.quick else (0.4, 5)
    impls = implementations(args)
    rows = [
        ("TLS 1.3 handshakes/s, ECDSA P-256", "/s", handshakes,
         "≥ 2.5× pyOpenSSL, ≥ 1.0× pyrtls"),
        ("TLS 1.3 round trip of a 64-byte message", "µs", round_trip_us,
         "≤ 0.4× pyOpenSSL, ≤ 1.0× pyrtls"),
        ("TLS 1.3 bulk, 16 KiB writes", "MB/s", bulk_mb_s, "≥ 1.0× pyrtls"),
    ]
    names = [n for n, _ in impls]
    ratios = [f"ferrossl/{n}" for n in names[1:]]
    print(f"| benchmark | {' | '.join(names)} | {' | '.join(ratios)} | target |")
    print("|---|" + "---|" * (2 * len(names) - 1) + "---|")
    for title, unit, run, target in rows:
        samples: list[list[float] | str] = [[] if not isinstance(i, str) else i for _, i in impls]
        for _ in range(reps):
            for (_, impl), s in zip(impls, samples):
                if not isinstance(impl, str):
                    s.append(run(impl, seconds))
        cells = [cell(s, unit) for s in samples]
        cells += [ratio(samples[0], s) for s in samples[1:]]
        print(f"| {title} | {' | '.join(cells)} | {target} |", flush=True)
    if args.quick:
        print("\nquick mode: every Python row ran; the numbers are not meant to be read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
