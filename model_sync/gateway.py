"""Fetching a gateway's model list: HTTP with bounded retries, or a saved response on disk.

Retry decisions come from ``httpx-retries`` (exponential backoff with jitter, ``Retry-After``
in both its seconds and HTTP-date forms). The body is read inside the transport's response
validator, so a connection reset or a stall in the middle of the body is retried like a
refused connection, and an oversized body is refused after reading at most the cap.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
from httpx_retries import Retry, RetryTransport

from model_sync.settings import HttpSettings

BODY_PREVIEW_BYTES = 200
RETRY_STATUS_CODES = frozenset([429, *range(500, 600)])
USER_AGENT = "model_sync (+https://github.com/dagster-io/dagster)"


class GatewayError(RuntimeError):
    """The gateway could not be read, or did not answer with a model list."""

    def __init__(self, message: str, *, url: str, status: int | None, body: bytes = b""):
        preview = body[:BODY_PREVIEW_BYTES].decode("utf-8", errors="replace")
        status_text = f"HTTP {status}" if status is not None else "no HTTP status"
        super().__init__(f"{message} (url: {url}, {status_text}, body starts: {preview!r})")
        self.url = url
        self.status = status
        self.body_preview = preview


class _BodyTooLarge(Exception):
    """Not an ``httpx`` error, so the retry transport never retries it."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FetchedBody:
    """One fetched response body, exactly as served, with what is needed to audit it."""

    url: str
    status: int | None
    fetched_at: datetime
    body: bytes
    sha256: str
    fetch_ms: int
    # Cache validators the server sent, for the next conditional GET.
    etag: str | None = None
    last_modified: str | None = None

    @property
    def byte_count(self) -> int:
        return len(self.body)

    @classmethod
    def of(cls, url: str, body: bytes, *, status: int | None = None, **extra) -> FetchedBody:
        return cls(
            url=url,
            status=status,
            fetched_at=extra.pop("fetched_at", None) or datetime.now(UTC),
            body=body,
            sha256=hashlib.sha256(body).hexdigest(),
            fetch_ms=extra.pop("fetch_ms", 0),
            **extra,
        )

    def error(self, message: str) -> GatewayError:
        """A clear error about this body: the URL, the status and its first bytes."""
        return GatewayError(message, url=self.url, status=self.status, body=self.body)


@dataclass(frozen=True)
class NotModified:
    """The server answered 304 to a conditional GET: the body is the one we already have."""

    url: str
    fetch_ms: int


@dataclass(frozen=True)
class Validators:
    """What a conditional GET sends: the ETag and Last-Modified of the last body."""

    etag: str | None = None
    last_modified: str | None = None


def is_local(url: str) -> bool:
    scheme = urlparse(url).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and url[1:3] in (":\\", ":/"))


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(url)


@dataclass(frozen=True)
class GatewayFetcher:
    """Fetches one source's model list with the HTTP settings handed down whole."""

    url: str
    http: HttpSettings = HttpSettings()

    def fetch(self, validators: Validators | None = None) -> FetchedBody | NotModified:
        """GET the model list (conditionally when ``validators`` are given), or read it from
        disk. The body is returned as bytes; the source decodes and checks it."""
        started = time.monotonic()
        fetched_at = datetime.now(UTC)
        headers: dict[str, str] = {}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        try:
            if is_local(self.url):
                status, body, response_headers = None, self._read_file(), httpx.Headers()
            else:
                status, body, response_headers = self._get(headers)
        except (ValueError, httpx.InvalidURL) as error:
            raise GatewayError(f"invalid gateway URL: {error}", url=self.url, status=None) from None
        fetch_ms = round((time.monotonic() - started) * 1000)
        if status == 304:
            return NotModified(url=self.url, fetch_ms=fetch_ms)
        return FetchedBody.of(
            self.url,
            body,
            status=status,
            fetched_at=fetched_at,
            fetch_ms=fetch_ms,
            etag=response_headers.get("etag"),
            last_modified=response_headers.get("last-modified"),
        )

    def _read_file(self) -> bytes:
        path = _local_path(self.url)
        try:
            size = path.stat().st_size
            if size > self.http.max_body_bytes:
                raise GatewayError(
                    f"saved response is {size} bytes, over the cap of {self.http.max_body_bytes} "
                    "(MODEL_SYNC_MAX_BODY_BYTES)",
                    url=self.url,
                    status=None,
                )
            return path.read_bytes()
        except OSError as error:
            raise GatewayError(
                f"cannot read the saved response: {error.strerror or error}",
                url=self.url,
                status=None,
            ) from None

    def _read_capped(self, response: httpx.Response) -> bytes:
        """Read the body within the attempt's deadline and the size cap."""
        if "model_sync_body" in response.extensions:
            return response.extensions["model_sync_body"]
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.http.max_body_bytes:
            raise _BodyTooLarge(f"declared Content-Length {declared}", response.status_code)
        deadline = time.monotonic() + self.http.timeout_seconds
        received = bytearray()
        for chunk in response.iter_bytes():
            received += chunk
            if len(received) > self.http.max_body_bytes:
                raise _BodyTooLarge(
                    f"more than {len(received)} bytes received", response.status_code
                )
            if time.monotonic() > deadline:
                # A slow drip never trips the per-read timeout; bound the whole body instead.
                raise httpx.ReadTimeout(
                    f"body not complete within {self.http.timeout_seconds} s",
                    request=response.request,
                )
        body = response.extensions["model_sync_body"] = bytes(received)
        return body

    def _get(self, extra_headers: dict[str, str]) -> tuple[int, bytes, httpx.Headers]:
        retry = Retry(
            total=self.http.max_retries,
            status_forcelist=RETRY_STATUS_CODES,
            backoff_factor=self.http.backoff_seconds,
            # A hostile Retry-After must not park a run for hours: cap each wait and the sum.
            max_backoff_wait=60.0,
            total_timeout=180.0,
            validate_response=self._read_capped,
        )
        transport = RetryTransport(transport=httpx.HTTPTransport(), retry=retry)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **extra_headers}
        try:
            with (
                httpx.Client(
                    transport=transport, timeout=self.http.timeout_seconds, headers=headers
                ) as client,
                client.stream("GET", self.url) as response,
            ):
                body = self._read_capped(response)
        except _BodyTooLarge as error:
            raise GatewayError(
                f"response body over the cap of {self.http.max_body_bytes} bytes "
                f"(MODEL_SYNC_MAX_BODY_BYTES): {error}",
                url=self.url,
                status=error.status,
            ) from None
        except httpx.HTTPError as error:
            retried = self.http.max_retries and isinstance(error, Retry.RETRYABLE_EXCEPTIONS)
            raise GatewayError(
                "request failed"
                + (f" after {self.http.max_retries} retries" if retried else "")
                + f": {type(error).__name__}: {error}",
                url=self.url,
                status=None,
            ) from None
        if response.status_code == 304 and extra_headers:
            return 304, body, response.headers
        if response.status_code != 200:
            raise GatewayError(
                f"the gateway answered HTTP {response.status_code}"
                + (" after retries" if response.status_code in RETRY_STATUS_CODES else ""),
                url=self.url,
                status=response.status_code,
                body=body,
            )
        return response.status_code, body, response.headers
