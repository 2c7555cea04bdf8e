"""Local HTTP servers on 127.0.0.1 that misbehave on purpose: one that never answers, one that streams without end,
one that drips a byte at a time, one that declares a huge body; and one that serves a file, for comparison."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Handler = Callable[[socket.socket, threading.Event], None]


def _read_request(connection: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            return
        data += chunk


def serving(body: bytes, status: str = "200 OK") -> Handler:
    """Answer with `body` and its Content-Length."""

    def handle(connection: socket.socket, stop: threading.Event) -> None:
        _read_request(connection)
        headers = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        connection.sendall(headers.encode() + body)

    return handle


def never_answering(connection: socket.socket, stop: threading.Event) -> None:
    """Accept the connection and the request, then say nothing."""
    _read_request(connection)
    stop.wait()


def endless(connection: socket.socket, stop: threading.Event) -> None:
    """Headers without a length, then bytes until the client hangs up."""
    _read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nConnection: close\r\n\r\n")
    chunk = b"\0" * 65536
    while not stop.is_set():
        connection.sendall(chunk)


def dripping(interval_s: float) -> Handler:
    """Headers without a length, then one byte every `interval_s` seconds, forever."""

    def handle(connection: socket.socket, stop: threading.Event) -> None:
        _read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        while not stop.wait(interval_s):
            connection.sendall(b"\0")

    return handle


def declaring(length: int) -> Handler:
    """Headers announcing `length` bytes, then a trickle that never reaches it."""

    def handle(connection: socket.socket, stop: threading.Event) -> None:
        _read_request(connection)
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n".encode())
        stop.wait()

    return handle


@contextmanager
def http_server(handler: Handler) -> Iterator[str]:
    """Serve `handler` on a free port of 127.0.0.1; yields the base URL. Every connection gets its own thread;
    all are told to stop, and the sockets closed, on exit."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[socket.socket] = []

    def handle(connection: socket.socket) -> None:
        with connection:
            try:
                handler(connection, stop)
            except OSError:  # the client hung up: what a timeout or a size limit does
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connections.append(connection)
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        time.sleep(0.05)  # let the handler threads see the stop
