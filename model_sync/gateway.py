"""Fetching a gateway's model list: HTTP with bounded retries, or a saved response on disk.

Retry decisions come from ``httpx-retries`` (exponential backoff with jitter, ``Retry-After``
in both its seconds and HTTP-date forms). The body is read inside the transport's response
validator, so a connection reset or a stall in the middle of the body is retried like a
refused connection, and an oversized body is refused after reading at most the cap.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
from httpx_retries import Retry, RetryTransport

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
class GatewayResponse:
    """One fetched model list, exactly as served, with what is needed to audit it."""

    url: str
    status: int | None
    fetched_at: datetime
    byte_count: int
    sha256: str
    fetch_ms: int
    models: list[Any]


def is_local(url: str) -> bool:
    scheme = urlparse(url).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and url[1:3] in (":\\", ":/"))


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(url)


def parse_model_list(body: bytes, *, url: str, status: int | None) -> list[Any]:
    """Check the ``{"object": "list", "data": [...]}`` envelope and return ``data``."""
    try:
        payload = json.loads(body)
    # ValueError covers invalid JSON, bad UTF-8 and integers past Python's digit limit.
    except ValueError as error:
        raise GatewayError(
            f"the gateway response is not JSON ({error})", url=url, status=status, body=body
        ) from None
    except RecursionError:
        raise GatewayError(
            "the gateway response is nested too deeply to parse", url=url, status=status, body=body
        ) from None
    if not isinstance(payload, dict):
        raise GatewayError(
            f"expected a JSON object with a model list, got {type(payload).__name__}",
            url=url,
            status=status,
            body=body,
        )
    if payload.get("object") != "list" or not isinstance(payload.get("data"), list):
        raise GatewayError(
            'expected {"object": "list", "data": [...]}, got keys '
            f"{sorted(payload)[:10]} with object={payload.get('object')!r} and data of type "
            f"{type(payload.get('data')).__name__}",
            url=url,
            status=status,
            body=body,
        )
    return payload["data"]


@dataclass(frozen=True)
class GatewayFetcher:
    """Fetch settings; see :class:`model_sync.resources.GatewayClient` for their meaning."""

    url: str
    timeout_seconds: float = 30.0
    max_retries: int = 4
    backoff_seconds: float = 1.0
    max_body_bytes: int = 50 * 1024 * 1024

    def fetch(self) -> GatewayResponse:
        started = time.monotonic()
        fetched_at = datetime.now(UTC)
        try:
            local = is_local(self.url)
            status, body = (None, self._read_file()) if local else self._get()
        except (ValueError, httpx.InvalidURL) as error:
            raise GatewayError(f"invalid gateway URL: {error}", url=self.url, status=None) from None
        models = parse_model_list(body, url=self.url, status=status)
        return GatewayResponse(
            url=self.url,
            status=status,
            fetched_at=fetched_at,
            byte_count=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            fetch_ms=round((time.monotonic() - started) * 1000),
            models=models,
        )

    def _read_file(self) -> bytes:
        path = _local_path(self.url)
        try:
            size = path.stat().st_size
            if size > self.max_body_bytes:
                raise GatewayError(
                    f"saved response is {size} bytes, over the cap of {self.max_body_bytes} "
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
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _BodyTooLarge(f"declared Content-Length {declared}", response.status_code)
        deadline = time.monotonic() + self.timeout_seconds
        received = bytearray()
        for chunk in response.iter_bytes():
            received += chunk
            if len(received) > self.max_body_bytes:
                raise _BodyTooLarge(
                    f"more than {len(received)} bytes received", response.status_code
                )
            if time.monotonic() > deadline:
                # A slow drip never trips the per-read timeout; bound the whole body instead.
                raise httpx.ReadTimeout(
                    f"body not complete within {self.timeout_seconds} s", request=response.request
                )
        body = response.extensions["model_sync_body"] = bytes(received)
        return body

    def _get(self) -> tuple[int, bytes]:
        retry = Retry(
            total=self.max_retries,
            status_forcelist=RETRY_STATUS_CODES,
            backoff_factor=self.backoff_seconds,
            # A hostile Retry-After must not park a run for hours: cap each wait and the sum.
            max_backoff_wait=60.0,
            total_timeout=180.0,
            validate_response=self._read_capped,
        )
        transport = RetryTransport(transport=httpx.HTTPTransport(), retry=retry)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        try:
            with (
                httpx.Client(
                    transport=transport, timeout=self.timeout_seconds, headers=headers
                ) as client,
                client.stream("GET", self.url) as response,
            ):
                body = self._read_capped(response)
        except _BodyTooLarge as error:
            raise GatewayError(
                f"response body over the cap of {self.max_body_bytes} bytes "
                f"(MODEL_SYNC_MAX_BODY_BYTES): {error}",
                url=self.url,
                status=error.status,
            ) from None
        except httpx.HTTPError as error:
            retried = self.max_retries and isinstance(error, Retry.RETRYABLE_EXCEPTIONS)
            raise GatewayError(
                "request failed"
                + (f" after {self.max_retries} retries" if retried else "")
                + f": {type(error).__name__}: {error}",
                url=self.url,
                status=None,
            ) from None
        if response.status_code != 200:
            raise GatewayError(
                f"the gateway answered HTTP {response.status_code}"
                + (" after retries" if response.status_code in RETRY_STATUS_CODES else ""),
                url=self.url,
                status=response.status_code,
                body=body,
            )
        return response.status_code, body
