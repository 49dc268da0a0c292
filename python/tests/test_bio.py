"""ferrossl.bio from Python: BIO chains against `openssl s_server -www`, an accept-BIO server
for OpenSSL's client, the SSL object over a socket, TLSSocket echo over IPv4 and IPv6 with
concurrent clients, timeouts, non-blocking calls, properties and misuse."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import pytest

from ferrossl import SSL as S
from ferrossl import bio

pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_ctx(pki) -> bio.SSLContext:
    ctx = bio.TLSServerContext()
    assert ctx.load_certs(str(pki.cert_path), str(pki.key_path))
    return ctx


def client_ctx(pki) -> bio.SSLContext:
    ctx = bio.TLSClientContext()
    ctx.set_verify_locations(str(pki.ca_path))
    ctx.set_verify(bio.SSL_VERIFY_PEER)
    return ctx


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_bio_chain_fetches_a_page_from_openssl_www(pki):
    port = free_port()
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(pki.cert_path), "-key", str(pki.key_path), "-www", "-naccept", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        while b"ACCEPT" not in proc.stdout.readline():
            pass
        ssl = bio.SSL(client_ctx(pki))
        ssl.set_connect_state()
        chain = bio.SSLBIO()
        chain.set_ssl(ssl, bio.BIO_CLOSE)
        connect = bio.ConnectBIO()
        connect.set_conn_hostname("127.0.0.1")
        connect.set_conn_port(port)
        assert connect.get_conn_port() == str(port)
        chain = chain.push(connect)
        chain.write(b"GET / HTTP/1.0\r\n\r\n")
        page = b""
        while True:
            data = chain.read(-1)
            if not data:
                break
            page += data
        assert page.startswith(b"HTTP/1.0 200 ok")
        chain.free()
        with pytest.raises(S.Error):
            chain.read(1)
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_accept_bio_serves_openssl_client(pki):
    template = bio.SSL(server_ctx(pki))
    template.set_accept_state()
    front = bio.SSLBIO()
    front.set_ssl(template, bio.BIO_CLOSE)
    accept = bio.AcceptedBIO()
    accept.set_accept_name("127.0.0.1")
    accept.set_accept_port(0)
    chain = front.push(accept)
    assert chain.do_accept() is None
    port = int(accept.get_accept_port())
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki.ca_path), "-verify_return_error", "-quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        proc.stdin.write(b"ping\n")
        proc.stdin.flush()
        client = chain.do_accept()
        assert client.read(-1) == b"ping\n"
        client.write(b"pong\n")
        assert proc.stdout.readline() == b"pong\n"
        client.free()
    finally:
        proc.kill()
        proc.wait(10)


def echo_server(pki, family, host, clients):
    server = bio.TLSSocket(None, server_ctx(pki))
    server.family = family
    server.bind(0, host)
    server.listen()
    port = server.port

    def run():
        workers = []
        for _ in range(clients):
            conn = server.accept()

            def serve(c=conn):
                c.send(c.receive(-1))
                c.close()

            t = threading.Thread(target=serve)
            t.start()
            workers.append(t)
        for t in workers:
            t.join(10)
        server.close()

    thread = threading.Thread(target=run)
    thread.start()
    return port, thread


@pytest.mark.parametrize("family,host", [(bio.AF_INET, "127.0.0.1"), (bio.AF_INET6, "::1")])
def test_tls_socket_echo_with_concurrent_clients(pki, family, host):
    if family == bio.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    port, server = echo_server(pki, family, host, 3)
    results = []

    def client(i):
        c = bio.TLSSocket(None, client_ctx(pki))
        c.family = family
        c.receive_timeout = 10_000
        assert c.connect(host, port, 5_000)
        msg = f"hello {i}\n".encode()
        c.send(msg)
        results.append(c.receive(len(msg)) == msg)
        c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    server.join(20)
    assert results == [True, True, True]


def test_timeouts_nonblocking_properties_and_misuse(pki):
    listener = bio.TLSSocket(None, server_ctx(pki))
    assert (listener.host, listener.port, listener.is_bound, listener.shutdown_reason) == ("localhost", 0, False, -1)
    listener.bind(0, "127.0.0.1")
    assert listener.is_bound and listener.info()["port"] == listener.port
    listener.listen(4)
    assert listener.is_listening
    listener.set_blocking(False)
    start = time.monotonic()
    with pytest.raises(S.WantReadError):
        listener.accept()
    assert time.monotonic() - start < 0.5
    listener.set_blocking(True)

    accepted = []
    t = threading.Thread(target=lambda: accepted.append(listener.accept()))
    t.start()
    c = bio.TLSSocket(None, client_ctx(pki))
    c.connect("127.0.0.1", listener.port, 5_000)
    t.join(10)
    assert c.is_connected and c.is_client
    c.receive_timeout = 200
    assert c.get_option(bio.SO_RCVTIMEO) == 200
    start = time.monotonic()
    with pytest.raises(S.Error, match="timed out"):
        c.receive(10)
    assert time.monotonic() - start < 1.5
    with pytest.raises(ValueError, match="unsupported socket option"):
        c.set_option(9999, 1)
    with pytest.raises(S.Error):
        listener.connect("127.0.0.1", 1, 100)
    c.shutdown()
    assert c.is_shutdown and c.shutdown_reason == 2
    c.close()
    c.close()
    assert c.is_closed
    accepted[0].close()
    listener.close()

    a, b = bio.BIO(bio.BIO_s_mem), bio.BIO(bio.BIO_s_mem)
    with pytest.raises(ValueError):
        a.push(a)
    a.push(b)
    with pytest.raises(ValueError):
        b.push(a)
    with pytest.raises(S.WantReadError):
        a.read(4)
    assert a.should_retry()
    with pytest.raises(ValueError):
        bio.TLSContext().set_verify(bio.SSL_VERIFY_FAIL_IF_NO_PEER_CERT)
    with pytest.raises(S.Error):
        bio.TLSContext().set_verify(bio.SSL_VERIFY_PEER | bio.SSL_VERIFY_POST_HANDSHAKE)
    ctx = bio.TLSContext()
    assert ctx.load_certs("/no/such/cert.pem", "/no/such/key.pem") is False
    assert "cannot read" in ctx.last_error


def test_ssl_object_over_a_socket_fd(pki):
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        raw, _ = listener.accept()
        ctx = S.Context(S.TLS_METHOD)
        ctx.use_certificate_chain_file(str(pki.cert_path))
        ctx.use_privatekey_file(str(pki.key_path))
        conn = S.Connection(ctx, raw)
        conn.set_accept_state()
        conn.do_handshake()
        conn.sendall(conn.recv(100))
        raw.close()

    t = threading.Thread(target=serve)
    t.start()
    raw = socket.create_connection(listener.getsockname(), timeout=10)
    ssl = bio.SSL(client_ctx(pki))
    assert ssl.get_fd() == -1
    ssl.set_fd(raw.fileno())
    assert ssl.get_fd() == raw.fileno()
    ssl.connect()
    assert ssl.error() == 0
    ssl.write(b"over a descriptor")
    assert ssl.read(-1) == b"over a descriptor"
    ssl.free()
    t.join(10)
    raw.close()
    listener.close()


def test_connect_bio_settings_and_chain_against_stdlib_server(pki):
    import ssl as stdlib_ssl

    sctx = stdlib_ssl.SSLContext(stdlib_ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.cert_path, pki.key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        raw, _ = listener.accept()
        raw.settimeout(10)
        with sctx.wrap_socket(raw, server_side=True) as tls:
            tls.sendall(b"echo: " + tls.recv(100))

    t = threading.Thread(target=serve)
    t.start()
    ctx = client_ctx(pki)
    assert ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256")
    ssl = bio.SSL(ctx)
    ssl.set_connect_state()
    front = bio.SSLBIO()
    front.set_ssl(ssl, bio.BIO_CLOSE)
    connect = bio.ConnectBIO()
    connect.set_conn_hostname("localhost")
    connect.set_conn_address("127.0.0.1")
    connect.set_conn_port(port)
    connect.set_conn_family(bio.AF_INET)
    assert connect.get_conn_hostname() == "localhost"
    assert connect.get_conn_family() == bio.AF_INET
    chain = front.push(connect)
    chain.do_connect()
    assert connect.get_conn_address() == "127.0.0.1"
    assert connect.get_fd() >= 0
    chain.write("text is sent as UTF-8")
    assert chain.read(-1) == b"echo: text is sent as UTF-8"
    assert chain.error() == 0 and isinstance(chain.error_string(), str)
    rest = chain.pop()
    assert rest is not None and rest.get_conn_port() == str(port)
    assert chain.pop() is None
    rest.free()
    chain.free()
    t.join(10)
    listener.close()


def test_accept_bio_settings_and_non_blocking_accept(pki):
    accept = bio.AcceptedBIO()
    accept.set_accept_name("127.0.0.1")
    accept.set_accept_port(0)
    accept.set_accept_family(bio.AF_INET)
    assert accept.get_accept_name() == "127.0.0.1"
    assert accept.get_accept_family() == bio.AF_INET
    assert accept.do_accept() is None  # binds and listens
    accept.set_non_blocking(True)
    with pytest.raises(S.WantReadError):
        accept.do_accept()  # nobody is connecting
    assert accept.should_retry()
    accept.free()


def test_tls_socket_send_timeout_and_socket_access(pki):
    sock = bio.TLSSocket(None, client_ctx(pki))
    assert sock.send_timeout == 0
    sock.send_timeout = 1500
    assert sock.send_timeout == 1500 and sock.get_option(bio.SO_SNDTIMEO) == 1500
    assert sock.get_socket() is None  # the socket lives inside ferrossl
    assert sock.get_context() is not None
    sock.close()
