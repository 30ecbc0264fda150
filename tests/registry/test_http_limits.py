"""Clients that send their requests too slowly, against a real `charter serve` through raw sockets."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.registry.support import charter_server

# The server's limits are one second each; a client gives up on the server after this many seconds,
# which the server, when it enforces its limits, never comes near.
PATIENCE = 8


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    workdir = tmp_path_factory.mktemp("http-limits")
    with charter_server(workdir, header_timeout_seconds="1", body_timeout_seconds="1") as url:
        parts = urlsplit(url)
        yield parts.hostname or "127.0.0.1", parts.port or 80


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address)
    sock.settimeout(PATIENCE)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; a socket timeout (the server held on) fails the test."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def read_response(sock: socket.socket) -> bytes:
    """One response on a kept-alive connection: its head, then Content-Length bytes of body."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    fields = dict(line.split(b": ", 1) for line in head.lower().split(b"\r\n")[1:])
    length = int(fields[b"content-length"])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def status_and_body(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def form_request(length: int) -> bytes:
    return (
        b"POST /oauth/token HTTP/1.1\r\nHost: charter\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(length).encode() + b"\r\n\r\n"
    )


def test_a_body_shorter_than_its_content_length_is_answered_408(address):
    with connect(address) as sock:
        sock.sendall(form_request(1000) + b"grant_type")
        response = read_until_closed(sock)
    status, problem = status_and_body(response)
    assert status == 408
    assert b"content-type: application/problem+json" in response.lower()
    assert problem["type"] == "/problems/request-timeout"
    assert problem["instance"] == "/oauth/token"


def test_header_lines_sent_slowly_are_cut_off(address):
    with connect(address) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: charter\r\n")
        for line in range(4 * PATIENCE):
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                break
            sock.sendall(f"X-Line-{line}: still coming\r\n".encode())
        else:
            pytest.fail("the server kept waiting for a head that never ended")
        status, problem = status_and_body(read_until_closed(sock))
    assert status == 408
    assert problem["type"] == "/problems/request-timeout"


def test_a_connection_that_says_nothing_is_closed(address):
    with connect(address) as sock:
        status, _ = status_and_body(read_until_closed(sock))
    assert status == 408


def test_requests_sent_in_time_are_answered_and_the_connection_kept(address):
    with connect(address) as sock:
        for _ in range(2):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: charter\r\n\r\n")
            assert status_and_body(read_response(sock))[0] == 200
        # A body slower than the base timeout, but faster than the minimum rate, is read to the end.
        body = b"grant_type=client_credentials&padding=" + b"x" * (48 * 1024)
        sock.sendall(form_request(len(body)))
        for start in range(0, len(body), 12 * 1024):
            sock.sendall(body[start : start + 12 * 1024])
            time.sleep(0.4)
        status, answer = status_and_body(read_response(sock))
    assert (status, answer["error"]) == (401, "invalid_client")  # read whole, no credentials in it
