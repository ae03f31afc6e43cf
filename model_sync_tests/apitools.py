"""Keys, tokens and processes for the HTTP API tests (in-process and deployed)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

REPO = Path(__file__).resolve().parent.parent
SYNC = "/api/v1/scheduler/sync-models"
STATS = "/api/v1/scheduler/sync-stats"
RUNS = "/api/v1/scheduler/sync-runs"
HEALTH = "/healthz"
SECRET = "api-test-shared-secret-of-enough-length"
ISSUER = "https://auth.example.test/"
AUDIENCE = "model-sync-api"
JWKS_KID = "rsa-2025"
SUBJECT = "svc-scheduler"
TRIGGER_TAG = "model_sync/triggered_by"
REQUESTER_TAG = "model_sync/requested_by"
UNAUTHORIZED = {"error": "unauthorized"}
DROP = object()


@dataclass(frozen=True)
class Keys:
    rsa: rsa.RSAPrivateKey
    other_rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    other_ec: ec.EllipticCurvePrivateKey
    rsa_pem: Path
    ec_pem: Path
    jwks: Path


def _public_pem(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def make_keys(folder: Path) -> Keys:
    """Key pairs and the files a deployment points at (PEM and JWKS)."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other_ec = ec.generate_private_key(ec.SECP256R1())
    rsa_pem = folder / "rsa_public.pem"
    rsa_pem.write_bytes(_public_pem(rsa_key))
    ec_pem = folder / "ec_public.pem"
    ec_pem.write_bytes(_public_pem(ec_key))
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": JWKS_KID, "alg": "RS256", "use": "sig"}]}))
    return Keys(rsa_key, other_rsa, ec_key, other_ec, rsa_pem, ec_pem, jwks)


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid claim set; pass ``name=DROP`` to leave a claim out."""
    now = int(time.time())
    payload = {"sub": SUBJECT, "iat": now, "exp": now + 300, **overrides}
    return {name: value for name, value in payload.items() if value is not DROP}


def sign(key, algorithm: str, payload: dict | None = None, **headers: Any) -> str:
    return jwt.encode(claims() if payload is None else payload, key, algorithm, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, payload: dict, hmac_key: bytes | None) -> str:
    """A JWT assembled by hand, for the tokens PyJWT rightly refuses to produce."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = (
        b""
        if hmac_key is None
        else hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{b64url(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hs256_headers(**overrides: Any) -> dict[str, str]:
    return bearer(sign(SECRET, "HS256", claims(**overrides)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without any MODEL_SYNC_* / DAGSTER_* setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_SYNC_", "DAGSTER_"))}
    return {**env, **overrides}


def executable(name: str) -> str:
    """A console script of this virtualenv, as a user who installed the project runs it."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


@dataclass
class Process:
    popen: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> float:
        """SIGTERM the process group; returns how long its leader took to exit.

        Whatever of the group outlives its leader is then killed. ``dagster dev`` exits on
        SIGTERM while its code servers wait out their heartbeat (up to 45 s), and one of them
        still sent a poll to the session's shared gateway server half a minute later, into the
        request log of an unrelated test (seen twice in CI: a third GET in a test that counts
        two). A test's processes must end with the test.
        """
        started = time.monotonic()
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=15)
        leader_exited = time.monotonic() - started
        kill_group(self.popen.pid)
        return leader_exited


def kill_group(group: int) -> None:
    """SIGKILL every process left in a process group (its leader has exited)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> Process:
    with log.open("wb") as output:
        popen = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(popen, log)


def start_api(
    env: dict[str, str], log: Path, *args: str, port: int | None = None
) -> tuple[Process, str]:
    """``model-sync-api --host 127.0.0.1 --port N`` from the project folder, as documented."""
    port = port or free_port()
    process = start(
        [executable("model-sync-api"), "--host", "127.0.0.1", "--port", str(port), *args],
        env,
        REPO,
        log,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_healthy(process: Process, base_url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.popen.poll() is None, process.output()
        try:
            if httpx.get(f"{base_url}{HEALTH}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the API did not come up: {process.output()}")
