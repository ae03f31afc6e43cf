"""Bearer-token (JWT) verification for the HTTP API.

Each algorithm is bound to its own key material: HS256 only ever verifies with the shared
secret, RS256 only with RSA public keys, ES256 only with P-256 public keys. The token's header
picks among those, never the other way round, so an attacker cannot make us verify an RS256
key as an HMAC secret (the classic algorithm-confusion attack), and ``none`` is never accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from model_sync.settings import Settings

ALLOWED_ALGORITHMS = ("HS256", "RS256", "ES256")
CLOCK_SKEW_SECONDS = 10


class InvalidToken(Exception):
    """Any reason to refuse a token; the reason is logged, never sent to the client."""


def _algorithm_for(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ValueError(f"unsupported public key type {type(key).__name__} (use RSA or EC P-256)")


@dataclass
class TokenVerifier:
    secret: str | None = None
    # algorithm → list of (kid or None, key)
    public_keys: dict[str, list[tuple[str | None, Any]]] = field(default_factory=dict)
    issuer: str | None = None
    audience: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier | None:
        """The configured verifier, or None when no key material is configured at all."""
        verifier = cls(
            secret=settings.jwt_secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
        if settings.jwt_public_key_file:
            verifier.add_public_key(load_pem_public_key(settings.jwt_public_key_file.read_bytes()))
        if settings.jwt_jwks_file:
            verifier.add_jwks(settings.jwt_jwks_file)
        return verifier if verifier.secret or verifier.public_keys else None

    def add_public_key(self, key: Any, kid: str | None = None) -> None:
        self.public_keys.setdefault(_algorithm_for(key), []).append((kid, key))

    def add_jwks(self, path: Path) -> None:
        try:
            key_set = jwt.PyJWKSet.from_json(Path(path).read_text())
        except (jwt.PyJWTError, ValueError) as error:
            raise ValueError(f"{path}: not a usable JWKS: {error}") from None
        for jwk in key_set.keys:
            if jwk.key_type == "oct":
                raise ValueError(f"{path}: symmetric keys do not belong in a JWKS of public keys")
            self.add_public_key(jwk.key, jwk.key_id)

    def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken(f"malformed token: {error}") from None
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise InvalidToken(f"algorithm {algorithm!r} is not allowed")
        if algorithm == "HS256":
            if not self.secret:
                raise InvalidToken("HS256 tokens are not accepted here")
            keys = [self.secret]
        else:
            candidates = self.public_keys.get(algorithm, [])
            kid = header.get("kid")
            keys = [key for key_id, key in candidates if kid is None or key_id in (None, kid)]
            if not keys:
                raise InvalidToken(f"no {algorithm} key for kid {kid!r}")
        required = ["exp"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        last_error: Exception | None = None
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    issuer=self.issuer,
                    audience=self.audience,
                    leeway=CLOCK_SKEW_SECONDS,
                    options={"require": required, "verify_aud": self.audience is not None},
                )
            except jwt.InvalidSignatureError as error:
                last_error = error  # another key of the set may match
            except jwt.PyJWTError as error:
                raise InvalidToken(f"{type(error).__name__}: {error}") from None
        raise InvalidToken(f"bad signature: {last_error}")


def describe(verifier: TokenVerifier) -> str:
    kinds = (["HS256 secret"] if verifier.secret else []) + sorted(verifier.public_keys)
    parts = [", ".join(kinds)]
    if verifier.issuer:
        parts.append(f"iss={verifier.issuer}")
    if verifier.audience:
        parts.append(f"aud={verifier.audience}")
    return json.dumps(parts)
