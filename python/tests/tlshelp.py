"""Helpers shared by the test modules: contexts from the test PKI and memory-BIO pumping."""

from __future__ import annotations

from ferrossl import SSL


def server_context(pki) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.use_certificate_chain_file(str(pki.cert_path))
    ctx.use_privatekey_file(str(pki.key_path))
    return ctx


def client_context(pki) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.load_verify_locations(str(pki.ca_path))
    ctx.set_verify(SSL.VERIFY_PEER)
    return ctx


def pump(a: SSL.Connection, b: SSL.Connection) -> None:
    while True:
        try:
            b.bio_write(a.bio_read(65536))
        except SSL.WantReadError:
            return


def handshake(client: SSL.Connection, server: SSL.Connection) -> None:
    for _ in range(20):
        for conn in (client, server):
            try:
                conn.do_handshake()
            except SSL.WantReadError:
                pass
        pump(client, server)
        pump(server, client)
        if client.get_state_string() == server.get_state_string() == b"SSL negotiation finished successfully":
            return
    raise AssertionError("handshake did not finish")


def memory_pair(pki, cctx=None, sctx=None):
    client = SSL.Connection(cctx or client_context(pki), None)
    client.set_connect_state()
    server = SSL.Connection(sctx or server_context(pki), None)
    server.set_accept_state()
    return client, server
