"""10,000 TLS 1.3 handshakes in memory: the Python heap (tracemalloc) and the process's
resident memory stay flat, and connections and contexts leave no reference cycles behind."""

from __future__ import annotations

import gc
import os
import tracemalloc
import weakref

import pytest

from ferrossl import SSL
from tlshelp import client_context, server_context

pytestmark = pytest.mark.timeout(180)

HANDSHAKES = 10_000
WARM_UP = 500
DONE = b"SSL negotiation finished successfully"

#: Python heap growth allowed over the whole run. Nothing a handshake allocates should outlive
#: it, so the real growth is what the interpreter's own caches do (free lists, the traceback
#: frames tracemalloc keeps): a few KB. 100 KB is 10 bytes per handshake, well under any real
#: per-connection leak (a Connection with its native half holds several KB).
HEAP_TOLERANCE = 100_000

#: Resident memory growth allowed. The allocator keeps freed pages and grows its arenas in
#: steps of up to a few MB, so RSS moves even without a leak; 16 MB over 10,000 handshakes is
#: under 1.7 KB a handshake, while leaking one connection's buffers (tens of KB of TLS record
#: buffers each) would add hundreds of MB.
RSS_TOLERANCE = 16 * 2**20


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one_handshake(cctx: SSL.Context, sctx: SSL.Context) -> SSL.Connection:
    """A full TLS 1.3 handshake in three flights, then one byte each way."""
    client = SSL.Connection(cctx, None)
    client.set_connect_state()
    client.set_tlsext_host_name(b"localhost")
    server = SSL.Connection(sctx, None)
    server.set_accept_state()
    # ClientHello; ServerHello..Finished; client Finished.
    for sender, receiver in ((client, server), (server, client), (client, server)):
        try:
            sender.do_handshake()
        except SSL.WantReadError:
            pass
        receiver.bio_write(sender.bio_read(65536))
    server.do_handshake()
    assert client.get_state_string() == server.get_state_string() == DONE
    client.send(b"c")
    server.bio_write(client.bio_read(65536))
    assert server.recv(1) == b"c"
    return client


def run(n: int, cctx: SSL.Context, sctx: SSL.Context) -> None:
    for _ in range(n):
        one_handshake(cctx, sctx)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS is read from /proc (Linux)")
def test_ten_thousand_handshakes_keep_memory_flat(pki):
    cctx, sctx = client_context(pki), server_context(pki)
    sctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)  # a cache would grow by design
    run(WARM_UP, cctx, sctx)
    gc.collect()
    tracemalloc.start()
    heap_before = tracemalloc.get_traced_memory()[0]
    rss_before = rss_bytes()
    # Reference cycles would show as garbage found by the collector: keep it off meanwhile
    # so that nothing is collected behind our back.
    gc.disable()
    try:
        run(HANDSHAKES, cctx, sctx)
        assert gc.collect() == 0, "handshakes left reference cycles"
    finally:
        gc.enable()
    heap_growth = tracemalloc.get_traced_memory()[0] - heap_before
    tracemalloc.stop()
    rss_growth = rss_bytes() - rss_before
    assert heap_growth < HEAP_TOLERANCE, f"Python heap grew by {heap_growth} bytes"
    assert rss_growth < RSS_TOLERANCE, f"RSS grew by {rss_growth} bytes"


def test_connections_and_contexts_are_freed_without_the_collector(pki):
    gc.disable()
    try:
        cctx, sctx = client_context(pki), server_context(pki)
        # Callbacks that close over the objects are the usual source of cycles.
        sctx.set_info_callback(lambda conn, where, ret: conn.get_app_data())
        sctx.set_tlsext_servername_callback(lambda conn: conn.get_servername())
        client = one_handshake(cctx, sctx)
        refs = [weakref.ref(o) for o in (client, cctx)]
        del client, cctx
        assert [r() for r in refs] == [None, None]
        server_ref = weakref.ref(sctx)
        del sctx
        assert server_ref() is None
    finally:
        gc.enable()
