"""Small real HTTP servers on 127.0.0.1 for download and backend tests: each runs in a thread of the test."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FileServerState:
    folder: Path
    cut_after: list[int] = field(default_factory=list)  # per request, in order: drop the connection after N bytes
    ranges: list[str | None] = field(default_factory=list)  # the Range header of each request
    honour_range: bool = True


class _FileHandler(http.server.BaseHTTPRequestHandler):
    state: FileServerState

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        st = self.state
        path = st.folder / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        header = self.headers.get("Range")
        st.ranges.append(header)
        start = 0
        if header and st.honour_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = st.cut_after.pop(0) if st.cut_after else None
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # mid-transfer: the client sees a short read
            return
        self.wfile.write(body)


@contextlib.contextmanager
def file_server(folder: Path) -> Iterator[tuple[str, FileServerState]]:
    """Serves `folder` with HTTP Range support; yields (base URL, state)."""
    state = FileServerState(folder)
    handler = type("Handler", (_FileHandler,), {"state": state})
    with _serving(handler) as url:
        yield url, state


@contextlib.contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- OpenAI-compatible chat servers with scripted behaviour ----------------------------------------------


def sse_chunk(text: str, finish: str | None = None) -> bytes:
    payload = {"choices": [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}]}
    return f"data: {json.dumps(payload)}\n\n".encode()


Behaviour = Callable[[http.server.BaseHTTPRequestHandler, dict], None]


class _ChatHandler(http.server.BaseHTTPRequestHandler):
    behaviour: Behaviour
    requests: list[dict]

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        body["_authorization"] = self.headers.get("Authorization")
        self.requests.append(body)
        self.behaviour(self, body)


@contextlib.contextmanager
def chat_server(behaviour: Behaviour) -> Iterator[tuple[str, list[dict]]]:
    """An OpenAI-style server whose every POST is answered by `behaviour`; yields (base URL, requests)."""
    requests: list[dict] = []
    handler = type("Handler", (_ChatHandler,), {"behaviour": staticmethod(behaviour), "requests": requests})
    with _serving(handler) as url:
        yield url + "/v1", requests


def stream_reply(pieces: list[str], *, stall_after: int | None = None, stall_s: float = 30.0) -> Behaviour:
    """Streams `pieces` as SSE; with `stall_after`, goes silent after that many pieces."""

    def behave(h: http.server.BaseHTTPRequestHandler, body: dict) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        for i, piece in enumerate(pieces):
            if stall_after is not None and i == stall_after:
                time.sleep(stall_s)
                return
            h.wfile.write(sse_chunk(piece))
            h.wfile.flush()
        h.wfile.write(sse_chunk("", "stop") + b"data: [DONE]\n\n")
        h.wfile.flush()

    return behave


def status_reply(code: int, message: str = "", headers: dict[str, str] | None = None) -> Behaviour:
    def behave(h: http.server.BaseHTTPRequestHandler, body: dict) -> None:
        data = json.dumps({"error": {"message": message or f"error {code}"}}).encode()
        h.send_response(code)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return behave


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers (a hung server); yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join(2)
        for c in held:
            c.close()
        sock.close()
