"""GatewayFetcher against real servers on loopback: retries, timeouts, bad bodies, size caps,
conditional GETs.

The fetcher is the one place that talks to the network, so every way a gateway can misbehave
is played here by a real server: ``pytest-httpserver`` for well-formed HTTP, and
:class:`RawServer` (a few lines of sockets) for faults a well-behaved HTTP server cannot
produce, such as a reset in the middle of the body or headers followed by silence.
Timeouts and backoff are kept tiny through ``HttpSettings``, so the suite stays fast.

The fetcher returns the body as bytes; reading it as a model list (JSON, then the Vercel
``{"object": "list", "data": [...]}`` envelope) is the source's job, reached the way every
sync reaches it: ``service.read_response(source, fetched)``. The envelope tests therefore
fetch and then read, and assert the error text a user sees on that path.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from model_sync.gateway import (
    BODY_PREVIEW_BYTES,
    USER_AGENT,
    FetchedBody,
    GatewayError,
    GatewayFetcher,
    NotModified,
    Validators,
)
from model_sync.service import read_response
from model_sync.settings import HttpSettings
from model_sync.sources import get_source
from model_sync.transform import NormalizedModels
from model_sync_tests.snapshots import snapshot_bytes, snapshot_path

SNAPSHOT = "models-2025-11-18.json"
SNAPSHOT_MODELS = 144
PATH = "/v1/models"

# Small enough to keep every retrying test well under a few seconds.
FAST = {"timeout_seconds": 1.0, "max_retries": 2, "backoff_seconds": 0.01}


VERCEL = get_source("vercel")


def fetcher(url: str, **overrides) -> GatewayFetcher:
    """A fetcher with fast retry settings; tests override only what they exercise."""
    return GatewayFetcher(url, http=HttpSettings(**{**FAST, **overrides}))


def fetched(fetch: GatewayFetcher) -> FetchedBody:
    """Run a fetch that must return a body (not a 304)."""
    response = fetch.fetch()
    assert isinstance(response, FetchedBody), response
    return response


def read(response: FetchedBody) -> NormalizedModels:
    """The fetched body read as the Vercel model list, the way every sync reads it."""
    return read_response(VERCEL, response)


def served_models(response: FetchedBody) -> list:
    """The served ``data`` entries, as the sync read them (each row keeps its raw model)."""
    models = read(response)
    assert models.broken == [] and models.skipped == []
    return list(models.frame["raw"])


def as_served(body: bytes) -> list:
    """The ``data`` list of a body, parsed here independently (exact decimals, like the sync)."""
    return json.loads(body, parse_float=Decimal)["data"]


def envelope(data, **extra) -> bytes:
    """A model-list body as the gateway serves it: ``{"object": "list", "data": [...]}``."""
    return json.dumps({"object": "list", "data": data, **extra}).encode()


def fetch_error(fetch: GatewayFetcher) -> GatewayError:
    """Run a fetch that must fail, and return its error for inspection."""
    with pytest.raises(GatewayError) as caught:
        fetch.fetch()
    return caught.value


def read_error(fetch: GatewayFetcher) -> GatewayError:
    """Fetch a body the server answered with (the fetch itself succeeds), read it as the model
    list, which must fail; return that error for inspection."""
    response = fetched(fetch)
    with pytest.raises(GatewayError) as caught:
        read(response)
    return caught.value


def assert_names_response(error: GatewayError, *, url: str, status: int | None, body: bytes):
    """An operator reading only the message must see where, what status and what came back."""
    message = str(error)
    preview = body[:BODY_PREVIEW_BYTES].decode("utf-8", errors="replace")
    assert error.url == url
    assert error.status == status
    assert error.body_preview == preview
    assert f"url: {url}" in message
    assert (f"HTTP {status}" if status is not None else "no HTTP status") in message
    assert f"body starts: {preview!r}" in message


def serve_sequence(httpserver: HTTPServer, *responses: tuple[int, bytes, dict]) -> str:
    """Queue responses to be served in order, one per request; return the URL."""
    for status, body, headers in responses:
        httpserver.expect_ordered_request(PATH).respond_with_data(
            body, status=status, headers=headers, content_type="application/json"
        )
    return httpserver.url_for(PATH)


def serve_forever(httpserver: HTTPServer, body: bytes, status: int = 200, **kwargs) -> str:
    """Answer every request to the model list the same way; return the URL."""
    kwargs.setdefault("content_type", "application/json")
    httpserver.expect_request(PATH).respond_with_data(body, status=status, **kwargs)
    return httpserver.url_for(PATH)


# --- A raw socket server, for faults pytest-httpserver cannot produce ----------------------

Behaviour = Callable[[socket.socket, threading.Event], None]


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [
        f"HTTP/1.1 {status} X",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def respond(body: bytes, status: int = 200) -> Behaviour:
    """A complete, ordinary response."""

    def play(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head(status, {"Content-Length": str(len(body))}) + body)

    return play


def stall_before_headers(conn: socket.socket, stop: threading.Event) -> None:
    """Accept the request and never answer (until the test ends)."""
    stop.wait(30)


def stall_after_headers(conn: socket.socket, stop: threading.Event) -> None:
    """Send headers promising a body, then go silent."""
    conn.sendall(_head(200, {"Content-Length": "1000"}) + b'{"object": "list", ')
    stop.wait(30)


def drip(conn: socket.socket, stop: threading.Event) -> None:
    """Send one byte every 50 ms: each read succeeds, so only a whole-body deadline stops it."""
    conn.sendall(_head(200, {"Content-Length": "100000"}))
    while not stop.wait(0.05):
        conn.sendall(b" ")


def reset_mid_body(body: bytes) -> Behaviour:
    """Promise the whole body, send half, then reset the connection (RST, not FIN)."""

    def play(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head(200, {"Content-Length": str(len(body))}) + body[: len(body) // 2])
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return play


def chunked(body: bytes, chunk_size: int = 4096) -> Behaviour:
    """The body in chunked transfer encoding, so no Content-Length announces its size."""

    def play(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head(200, {"Transfer-Encoding": "chunked"}))
        try:
            for start in range(0, len(body), chunk_size):
                piece = body[start : start + chunk_size]
                conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the client hung up once it had seen enough: that is the point

    return play


class RawServer:
    """A loopback TCP server playing one scripted behaviour per connection.

    Connection ``n`` gets ``behaviours[n]``; the last behaviour repeats for any further
    connection. Every response closes its connection, so connections == attempts.
    """

    def __init__(self, behaviours: Sequence[Behaviour]):
        self._behaviours = list(behaviours)
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self.connections = 0
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}{PATH}"
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            behaviour = self._behaviours[min(self.connections, len(self._behaviours) - 1)]
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn, behaviour), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, behaviour: Behaviour) -> None:
        with conn:
            conn.settimeout(5)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    data = conn.recv(65536)
                    if not data:
                        return
                    request += data
                behaviour(conn, self._stop)
            except OSError:
                pass  # the client gave up on us (timeout): expected in these tests

    def close(self) -> None:
        self._stop.set()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    """``raw_server(behaviour, ...)`` starts a :class:`RawServer`; all stop at teardown."""
    servers: list[RawServer] = []

    def start(*behaviours: Behaviour) -> RawServer:
        servers.append(RawServer(behaviours))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# --- Retries on status codes -----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 599])
def test_transient_server_error_is_retried(httpserver: HTTPServer, status: int):
    """A gateway hiccup must not cost a whole day's sync: one 5xx, then the list, succeeds."""
    url = serve_sequence(
        httpserver, (status, b"upstream down", {}), (200, snapshot_bytes(SNAPSHOT), {})
    )

    response = fetched(fetcher(url))

    assert response.body == snapshot_bytes(SNAPSHOT)
    assert len(served_models(response)) == SNAPSHOT_MODELS
    assert response.status == 200
    assert len(httpserver.log) == 2


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param(lambda: "1", id="seconds"),
        pytest.param(
            lambda: format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True),
            id="http-date",
        ),
    ],
)
def test_rate_limit_waits_for_retry_after(httpserver: HTTPServer, retry_after):
    """A 429 says when to come back; retrying sooner (backoff here is 10 ms) would be rude.

    The HTTP-date form has whole-second resolution, so "now + 2 s" means a wait of 1-2 s.
    """
    url = serve_sequence(
        httpserver,
        (429, b'{"error": "rate limited"}', {"Retry-After": retry_after()}),
        (200, snapshot_bytes(SNAPSHOT), {}),
    )

    started = time.monotonic()
    response = fetched(fetcher(url, timeout_seconds=5))
    waited = time.monotonic() - started

    assert response.body == snapshot_bytes(SNAPSHOT)
    assert len(served_models(response)) == SNAPSHOT_MODELS
    assert len(httpserver.log) == 2
    assert waited >= 0.9


# 428 and 430 border the one retried 4xx (429); 499 borders the retried 5xx range.
@pytest.mark.parametrize("status", [400, 401, 403, 404, 428, 430, 499])
def test_client_error_fails_at_once(httpserver: HTTPServer, status: int):
    """A 4xx will not heal by asking again (wrong URL, bad key): fail now, with what was said."""
    body = b'{"error": {"message": "no such route", "type": "not_found"}}'
    url = serve_forever(httpserver, body, status=status)

    error = fetch_error(fetcher(url))

    assert len(httpserver.log) == 1
    assert f"the gateway answered HTTP {status}" in str(error)
    assert "after retries" not in str(error)
    assert_names_response(error, url=url, status=status, body=body)


@pytest.mark.parametrize("max_retries", [0, 2])
@pytest.mark.parametrize("status", [429, 500, 503])
def test_persistent_server_error_gives_up_after_max_retries(
    httpserver: HTTPServer, status: int, max_retries: int
):
    """Retries are bounded: max_retries + 1 attempts, then an error naming the last status."""
    body = b"<html><body>503 Service Unavailable</body></html>"
    url = serve_forever(httpserver, body, status=status, content_type="text/html")

    error = fetch_error(fetcher(url, max_retries=max_retries))

    assert len(httpserver.log) == max_retries + 1
    assert f"the gateway answered HTTP {status} after retries" in str(error)
    assert_names_response(error, url=url, status=status, body=body)


# --- Network faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        pytest.param(stall_before_headers, "ReadTimeout: timed out", id="before-headers"),
        pytest.param(stall_after_headers, "ReadTimeout: timed out", id="after-headers"),
        pytest.param(drip, "ReadTimeout: body not complete within 0.5 s", id="drip"),
    ],
)
def test_stalled_server_times_out_after_retries(raw_server, behaviour: Behaviour, reason: str):
    """A hung gateway must not hang the run: every attempt is bounded, headers and body alike.

    ``drip`` sends a byte every 50 ms, so no single read ever times out; only the per-attempt
    deadline on the whole body ends it.
    """
    server = raw_server(behaviour)

    started = time.monotonic()
    error = fetch_error(fetcher(server.url, timeout_seconds=0.5, max_retries=1))

    assert "request failed after 1 retries" in str(error)
    assert reason in str(error)
    assert error.status is None
    assert server.connections == 2
    assert time.monotonic() - started < 10  # bounded, not hung


def test_connection_reset_mid_body_is_retried(raw_server):
    """A connection dropped halfway through the body is a network error like any other."""
    body = snapshot_bytes(SNAPSHOT)
    server = raw_server(reset_mid_body(body), respond(body))

    response = fetched(fetcher(server.url))

    assert response.body == body
    assert len(served_models(response)) == SNAPSHOT_MODELS
    assert response.sha256 == hashlib.sha256(body).hexdigest()
    assert server.connections == 2


def test_connection_reset_every_time_fails(raw_server):
    """When every attempt is cut off, the error says the request failed, never half a list."""
    server = raw_server(reset_mid_body(snapshot_bytes(SNAPSHOT)))

    error = fetch_error(fetcher(server.url))

    assert "request failed after 2 retries" in str(error)
    assert server.connections == 3


def test_connection_refused_fails():
    """Nothing listening (gateway down, wrong port) is reported, not raised as a raw OSError.

    A socket bound but not listening guarantees a refused connection on this port.
    """
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}{PATH}"

        error = fetch_error(fetcher(url))

    assert "ConnectError" in str(error)
    assert_names_response(error, url=url, status=None, body=b"")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://[::1/v1/models", id="unclosed-ipv6-bracket"),
        pytest.param("http://127.0.0.1:abc/v1/models", id="non-numeric-port"),
    ],
)
def test_malformed_url_is_a_gateway_error(url: str):
    """A typo in MODEL_SYNC_GATEWAY_URL must surface as GatewayError, which the asset reports.

    Any other exception escapes the asset's handling and fails the step with a bare traceback.
    """
    error = fetch_error(fetcher(url))

    assert_names_response(error, url=url, status=None, body=b"")


# --- Bodies that are not a model list ------------------------------------------------------------

_HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>The upstream server is unavailable.</p></body></html>"
)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(_HTML_PAGE, "is not JSON", id="html-error-page"),
        pytest.param(b"", "is not JSON", id="empty"),
        pytest.param(b"\xff\xfe\x00garbage", "is not JSON", id="not-utf8"),
        pytest.param(
            snapshot_bytes(SNAPSHOT)[: len(snapshot_bytes(SNAPSHOT)) // 2],
            "is not JSON",
            id="truncated",
        ),
        pytest.param(envelope({"id": "openai/gpt-5"}), "data of type dict", id="data-object"),
        pytest.param(envelope(None), "data of type NoneType", id="data-null"),
        pytest.param(b'{"object": "list"}', "data of type NoneType", id="data-missing"),
        pytest.param(json.dumps([{"id": "openai/gpt-5"}]).encode(), "got list", id="bare-list"),
        pytest.param(b"null", "got NoneType", id="json-null"),
        pytest.param(
            json.dumps({"object": "model", "data": []}).encode(),
            "object='model'",
            id="object-not-list",
        ),
        pytest.param(
            json.dumps({"error": {"message": "rate limited"}}).encode(),
            "got keys ['error']",
            id="error-object",
        ),
    ],
)
def test_body_that_is_not_a_model_list_fails(httpserver: HTTPServer, body: bytes, reason: str):
    """A 200 that is not a model list must fail loudly, showing what actually came back.

    It is not retried: the server answered, and the same URL will answer the same way. The
    fetch returns the body as served; reading it as Vercel's model list is what fails.
    """
    url = serve_forever(httpserver, body)

    error = read_error(fetcher(url))

    assert reason in str(error)
    assert_names_response(error, url=url, status=200, body=body)
    assert len(httpserver.log) == 1


def test_empty_model_list_is_a_valid_response(httpserver: HTTPServer):
    """An empty ``data`` is a well-formed envelope, so the fetch and the read succeed.

    Refusing to wipe the catalog is the sync's job (see test_gateway_faults), not the fetcher's.
    """
    url = serve_forever(httpserver, envelope([]))

    response = fetched(fetcher(url))

    assert response.body == envelope([])
    models = read(response)
    assert models.served == 0
    assert models.frame.empty
    assert response.status == 200


# --- Content handling ----------------------------------------------------------------------------


def test_successful_fetch_reports_what_was_served(httpserver: HTTPServer):
    """The audit trail (byte count, sha256) must describe exactly the bytes the gateway sent."""
    body = snapshot_bytes(SNAPSHOT)
    delay_seconds = 0.2

    def slow_answer(request: Request) -> Response:
        time.sleep(delay_seconds)  # so fetch_ms has a known lower bound
        return Response(body, content_type="application/json")

    httpserver.expect_request(
        PATH, method="GET", headers={"Accept": "application/json", "User-Agent": USER_AGENT}
    ).respond_with_handler(slow_answer)
    url = httpserver.url_for(PATH)

    before = datetime.now(UTC)
    started = time.monotonic()
    response = fetched(fetcher(url))
    elapsed_ms = (time.monotonic() - started) * 1000

    assert response.body == body
    assert len(served_models(response)) == SNAPSHOT_MODELS
    assert served_models(response) == as_served(body)
    assert response.byte_count == len(body)
    assert response.sha256 == hashlib.sha256(body).hexdigest()
    assert response.status == 200
    assert response.url == url
    assert before <= response.fetched_at <= datetime.now(UTC)
    # Milliseconds: at least the server's delay, at most the wall time of the call.
    assert delay_seconds * 1000 <= response.fetch_ms <= math.ceil(elapsed_ms)
    assert len(httpserver.log) == 1


def test_gzip_body_is_decoded(httpserver: HTTPServer):
    """Gateways behind CDNs compress; the list must be read from the decoded body.

    Documented behaviour: byte_count and sha256 describe the decoded JSON, not the gzip stream,
    so the same catalog has the same hash however it was transferred.
    """
    body = snapshot_bytes(SNAPSHOT)
    url = serve_forever(httpserver, gzip.compress(body), headers={"Content-Encoding": "gzip"})

    response = fetched(fetcher(url))

    assert response.body == body
    assert len(served_models(response)) == SNAPSHOT_MODELS
    assert response.byte_count == len(body)
    assert response.sha256 == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("content_type", ["text/plain", "text/html", "application/octet-stream"])
def test_wrong_content_type_with_json_body_is_accepted(httpserver: HTTPServer, content_type: str):
    """Documented behaviour: the Content-Type header is not checked, only the body.

    A mislabelled but valid list is still the catalog; an HTML page fails on its body instead.
    """
    url = serve_forever(httpserver, snapshot_bytes(SNAPSHOT), content_type=content_type)

    response = fetched(fetcher(url))
    assert response.body == snapshot_bytes(SNAPSHOT)
    assert len(served_models(response)) == SNAPSHOT_MODELS


# --- Size cap ------------------------------------------------------------------------------------

CAP = 10_000  # bytes; the snapshot is ~93 KB


def _served_with_content_length(httpserver: HTTPServer, raw_server) -> tuple[str, Callable]:
    return serve_forever(httpserver, snapshot_bytes(SNAPSHOT)), lambda: len(httpserver.log)


def _served_chunked(httpserver: HTTPServer, raw_server) -> tuple[str, Callable]:
    server = raw_server(chunked(snapshot_bytes(SNAPSHOT)))
    return server.url, lambda: server.connections


def _served_as_gzip_bomb(httpserver: HTTPServer, raw_server) -> tuple[str, Callable]:
    # ~3 KB on the wire, 3 MB decoded: the cap must apply to what is decoded.
    bomb = gzip.compress(b" " * 3_000_000)
    assert len(bomb) < CAP
    url = serve_forever(httpserver, bomb, headers={"Content-Encoding": "gzip"})
    return url, lambda: len(httpserver.log)


@pytest.mark.parametrize(
    "serve",
    [
        pytest.param(_served_with_content_length, id="content-length"),
        pytest.param(_served_chunked, id="chunked"),
        pytest.param(_served_as_gzip_bomb, id="gzip-bomb"),
    ],
)
def test_body_over_the_cap_is_refused(httpserver: HTTPServer, raw_server, serve):
    """A runaway body must not exhaust memory, announced (Content-Length) or not (chunked).

    Refused once, not retried: the same URL would send the same oversized body again.
    """
    url, attempts = serve(httpserver, raw_server)

    error = fetch_error(fetcher(url, max_body_bytes=CAP))

    assert f"response body over the cap of {CAP} bytes" in str(error)
    assert "MODEL_SYNC_MAX_BODY_BYTES" in str(error)
    assert attempts() == 1


@pytest.mark.parametrize("status", [404, 503])
def test_oversized_error_page_reports_its_real_status(httpserver: HTTPServer, status: int):
    """An error naming the wrong status sends the operator down the wrong path.

    A large 404/503 page must be refused as too large *and* reported with its own status.
    """
    url = serve_forever(httpserver, b"x" * (2 * CAP), status=status, content_type="text/html")

    error = fetch_error(fetcher(url, max_body_bytes=CAP, max_retries=0))

    assert "over the cap" in str(error)
    assert error.status == status
    assert f"HTTP {status}" in str(error)


def exactly(size: int) -> bytes:
    """A valid model list of exactly ``size`` bytes (trailing whitespace is still JSON)."""
    body = envelope([{"id": "openai/gpt-5"}])
    assert len(body) <= size
    return body + b" " * (size - len(body))


def _cap_probe_content_length(httpserver, raw_server, tmp_path, body: bytes) -> str:
    return serve_forever(httpserver, body)


def _cap_probe_chunked(httpserver, raw_server, tmp_path, body: bytes) -> str:
    return raw_server(chunked(body)).url


def _cap_probe_gzip(httpserver, raw_server, tmp_path, body: bytes) -> str:
    # The cap applies to the decoded body; the compressed one is far smaller.
    return serve_forever(httpserver, gzip.compress(body), headers={"Content-Encoding": "gzip"})


def _cap_probe_saved_file(httpserver, raw_server, tmp_path, body: bytes) -> str:
    path = tmp_path / "models.json"
    path.write_bytes(body)
    return str(path)


@pytest.mark.parametrize(
    "serve",
    [
        pytest.param(_cap_probe_content_length, id="content-length"),
        pytest.param(_cap_probe_chunked, id="chunked"),
        pytest.param(_cap_probe_gzip, id="gzip"),
        pytest.param(_cap_probe_saved_file, id="saved-file"),
    ],
)
@pytest.mark.parametrize(
    ("size", "accepted"),
    [pytest.param(CAP, True, id="exactly-the-cap"), pytest.param(CAP + 1, False, id="one-over")],
)
def test_body_of_exactly_the_cap_is_read_and_one_byte_more_is_refused(
    httpserver: HTTPServer, raw_server, tmp_path: Path, serve, size: int, accepted: bool
):
    """MODEL_SYNC_MAX_BODY_BYTES is the largest body accepted, however it arrives."""
    body = exactly(size)
    assert len(body) == size
    url = serve(httpserver, raw_server, tmp_path, body)
    if accepted:
        response = fetched(fetcher(url, max_body_bytes=CAP))
        assert response.body == body
        assert served_models(response) == [{"id": "openai/gpt-5"}]
        assert response.byte_count == CAP
    else:
        error = fetch_error(fetcher(url, max_body_bytes=CAP, max_retries=0))
        assert f"over the cap of {CAP}" in str(error)


@pytest.mark.parametrize(
    ("size", "shown"),
    [pytest.param(200, 200, id="exactly-200-bytes"), pytest.param(201, 200, id="201-bytes")],
)
def test_error_shows_at_most_the_first_200_bytes_of_the_body(size: int, shown: int):
    """Enough of a proxy's error page to recognise it, never a whole 50 MB body in a log."""
    body = bytes(ord("a") + i % 26 for i in range(size))
    error = GatewayError("the gateway answered HTTP 502", url="http://gw/", status=502, body=body)
    assert error.body_preview == body[:shown].decode()
    assert f"body starts: {body[:shown].decode()!r})" in str(error)


# --- Saved responses on disk ------------------------------------------------------------------


@pytest.mark.parametrize(
    "to_url",
    [
        pytest.param(str, id="path"),
        pytest.param(lambda path: path.as_uri(), id="file-url"),
    ],
)
def test_saved_response_is_read_from_disk(to_url: Callable[[Path], str]):
    """Offline and air-gapped deployments point the gateway URL at a saved response."""
    path = snapshot_path(SNAPSHOT)
    body = snapshot_bytes(SNAPSHOT)

    response = fetched(fetcher(to_url(path)))

    assert response.body == body
    assert len(served_models(response)) == SNAPSHOT_MODELS
    assert response.status is None
    assert response.byte_count == len(body)
    assert response.sha256 == hashlib.sha256(body).hexdigest()


def test_file_url_with_escaped_characters(tmp_path: Path):
    """A file:// URL is percent-decoded, so a folder with a space in its name works."""
    path = tmp_path / "saved models" / "list.json"
    path.parent.mkdir()
    path.write_bytes(envelope([{"id": "openai/gpt-5"}]))

    response = fetched(fetcher(path.as_uri()))

    assert "%20" in path.as_uri()
    assert served_models(response) == [{"id": "openai/gpt-5"}]


@pytest.mark.parametrize(
    "to_url",
    [
        pytest.param(lambda tmp: str(tmp / "missing.json"), id="missing-path"),
        pytest.param(lambda tmp: (tmp / "missing.json").as_uri(), id="missing-file-url"),
        pytest.param(str, id="directory"),
    ],
)
def test_unreadable_saved_response_fails(tmp_path: Path, to_url: Callable[[Path], str]):
    """A wrong path is reported as a GatewayError naming it, like an unreachable gateway."""
    url = to_url(tmp_path)

    error = fetch_error(fetcher(url))

    assert "cannot read the saved response" in str(error)
    assert_names_response(error, url=url, status=None, body=b"")


def test_saved_response_over_the_cap_is_refused():
    """The size cap holds for files too, checked before anything is read."""
    url = str(snapshot_path(SNAPSHOT))

    error = fetch_error(fetcher(url, max_body_bytes=CAP))

    assert f"over the cap of {CAP}" in str(error)
    assert error.status is None


def test_saved_response_that_is_not_a_list_fails(tmp_path: Path):
    """A saved file is checked exactly like an HTTP body, with no status to report."""
    path = tmp_path / "page.html"
    path.write_bytes(_HTML_PAGE)

    error = read_error(fetcher(str(path)))

    assert "is not JSON" in str(error)
    assert_names_response(error, url=str(path), status=None, body=_HTML_PAGE)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(
            b'{"object": "list", "data": [' + b"1" * 5000 + b"]}", "not JSON", id="5000-digits"
        ),
        pytest.param(b"[" * 100_000, "nested too deeply", id="deep-nesting"),
    ],
)
def test_bodies_the_json_parser_refuses_are_gateway_errors(body: bytes, reason: str) -> None:
    """Python's parser refuses these with ValueError/RecursionError; the run must get a clear
    GatewayError, not a traceback."""
    url = "http://127.0.0.1/v1/models"
    with pytest.raises(GatewayError, match=reason) as caught:
        read(FetchedBody.of(url, body, status=200))
    assert_names_response(caught.value, url=url, status=200, body=body)


# --- Conditional GET ----------------------------------------------------------------------------

ETAG = '"body-v1"'
LAST_MODIFIED = "Wed, 18 Nov 2025 09:30:00 GMT"


def sent_headers(httpserver: HTTPServer) -> list[dict[str, str]]:
    """The conditional headers of each request the server saw, in order (absent ones left out)."""
    return [
        {
            name: request.headers[name]
            for name in ("If-None-Match", "If-Modified-Since")
            if name in request.headers
        }
        for request, _ in httpserver.log
    ]


def test_unconditional_fetch_sends_no_validators_and_keeps_the_servers(httpserver: HTTPServer):
    """A plain fetch asks for the whole body and remembers the server's ETag and Last-Modified,
    which the next conditional GET sends back."""
    body = snapshot_bytes(SNAPSHOT)
    url = serve_forever(httpserver, body, headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED})

    response = fetched(fetcher(url))

    assert response.body == body
    assert (response.etag, response.last_modified) == (ETAG, LAST_MODIFIED)
    assert sent_headers(httpserver) == [{}]


def test_body_without_validators_has_none(httpserver: HTTPServer):
    url = serve_forever(httpserver, envelope([]))

    response = fetched(fetcher(url))

    assert (response.etag, response.last_modified) == (None, None)


@pytest.mark.parametrize(
    ("validators", "expected_headers"),
    [
        pytest.param(
            Validators(etag=ETAG, last_modified=LAST_MODIFIED),
            {"If-None-Match": ETAG, "If-Modified-Since": LAST_MODIFIED},
            id="both",
        ),
        pytest.param(Validators(etag=ETAG), {"If-None-Match": ETAG}, id="etag-only"),
        pytest.param(
            Validators(last_modified=LAST_MODIFIED),
            {"If-Modified-Since": LAST_MODIFIED},
            id="last-modified-only",
        ),
    ],
)
def test_conditional_get_sends_the_validators_and_a_304_means_not_modified(
    httpserver: HTTPServer, validators: Validators, expected_headers: dict[str, str]
):
    """The validators of the last body go out as If-None-Match / If-Modified-Since; the
    server's 304 comes back as NotModified (no body, nothing to sync), asked once."""
    url = serve_forever(httpserver, b"", status=304)

    started = time.monotonic()
    response = fetcher(url).fetch(validators)
    elapsed_ms = (time.monotonic() - started) * 1000

    assert isinstance(response, NotModified)
    assert response.url == url
    assert 0 <= response.fetch_ms <= math.ceil(elapsed_ms)
    assert sent_headers(httpserver) == [expected_headers]


def test_changed_body_answers_a_conditional_get_with_the_new_body(httpserver: HTTPServer):
    """When the list changed, the server ignores the validators and sends it with new ones."""
    body = snapshot_bytes(SNAPSHOT)
    url = serve_forever(httpserver, body, headers={"ETag": '"body-v2"'})

    response = fetcher(url).fetch(Validators(etag=ETAG))

    assert isinstance(response, FetchedBody)
    assert response.body == body
    assert response.status == 200
    assert response.etag == '"body-v2"'
    assert response.last_modified is None
    assert sent_headers(httpserver) == [{"If-None-Match": ETAG}]


@pytest.mark.parametrize(
    "validators",
    [
        pytest.param(None, id="no-validators"),
        pytest.param(Validators(), id="empty-validators"),
        pytest.param(Validators(etag="", last_modified=""), id="blank-validators"),
    ],
)
def test_304_to_a_request_without_validators_is_an_error(
    httpserver: HTTPServer, validators: Validators | None
):
    """A 304 only means "unchanged" as the answer to a conditional GET. Unasked, it says
    nothing about the list (a misconfigured cache or proxy): the fetch fails, once, saying so."""
    url = serve_forever(httpserver, b"", status=304)

    with pytest.raises(GatewayError) as caught:
        fetcher(url).fetch(validators)
    error = caught.value

    assert "the gateway answered HTTP 304" in str(error)
    assert "after retries" not in str(error)
    assert_names_response(error, url=url, status=304, body=b"")
    assert sent_headers(httpserver) == [{}]


def test_saved_response_ignores_validators(tmp_path: Path):
    """A file has no conditional form: it is read whole, validators or not."""
    path = tmp_path / "models.json"
    path.write_bytes(envelope([{"id": "openai/gpt-5"}]))

    response = fetcher(str(path)).fetch(Validators(etag=ETAG, last_modified=LAST_MODIFIED))

    assert isinstance(response, FetchedBody)
    assert response.body == path.read_bytes()
    assert response.status is None
