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

from model_sync.settings import ApiSettings

ALLOWED_ALGORITHMS = ("HS256", "RS256", "ES256")
CLOCK_SKEW_SECONDS = 10


MIN_SECRET_BYTES = 32


class InvalidToken(Exception):
    """Any reason to refuse a token; the reason is logged, never sent to the client."""


class ConfigurationError(ValueError):
    """The API's key material cannot be used; the message names the variable and the file."""


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _read(variable: str, path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigurationError(
            f"{variable}={path}: cannot read it ({error.strerror or error})"
        ) from None


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
    max_lifetime_seconds: int | None = None

    @classmethod
    def from_settings(cls, api: ApiSettings) -> TokenVerifier | None:
        """The configured verifier, or None when no key material is configured at all.

        Raises :class:`ConfigurationError` — one line naming the variable (and the file) — for
        a secret too short to resist guessing, a missing or unreadable key file, a file that
        is not a PEM public key, or a JWKS that is not usable.
        """
        secret = api.jwt_secret
        if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"MODEL_SYNC_JWT_SECRET is {len(secret.encode())} bytes; an HS256 secret needs "
                f"at least {MIN_SECRET_BYTES} (e.g. openssl rand -hex 32)"
            )
        verifier = cls(
            secret=secret,
            issuer=api.jwt_issuer,
            audience=api.jwt_audience,
            max_lifetime_seconds=api.jwt_max_lifetime_seconds,
        )
        if api.jwt_public_key_file:
            variable, path = "MODEL_SYNC_JWT_PUBLIC_KEY_FILE", api.jwt_public_key_file
            data = _read(variable, path)
            try:
                verifier.add_public_key(load_pem_public_key(data))
            except (ValueError, TypeError) as error:
                raise ConfigurationError(
                    f"{variable}={path}: not a usable PEM public key ({_first_line(error)})"
                ) from None
        if api.jwt_jwks_file:
            variable, path = "MODEL_SYNC_JWT_JWKS_FILE", api.jwt_jwks_file
            try:
                verifier.add_jwks(_read(variable, path).decode("utf-8", "replace"))
            except ValueError as error:
                raise ConfigurationError(f"{variable}={path}: {_first_line(error)}") from None
        return verifier if verifier.secret or verifier.public_keys else None

    def add_public_key(self, key: Any, kid: str | None = None) -> None:
        self.public_keys.setdefault(_algorithm_for(key), []).append((kid, key))

    def add_jwks(self, text: str) -> None:
        try:
            key_set = jwt.PyJWKSet.from_json(text)
        except (jwt.PyJWTError, ValueError) as error:
            raise ValueError(f"not a usable JWKS: {error}") from None
        for jwk in key_set.keys:
            if jwk.key_type == "oct":
                raise ValueError("symmetric keys do not belong in a JWKS of public keys")
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
        if self.max_lifetime_seconds is not None:
            required.append("iat")
        last_error: Exception | None = None
        for key in keys:
            try:
                claims = jwt.decode(
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
                continue
            except jwt.PyJWTError as error:
                raise InvalidToken(f"{type(error).__name__}: {error}") from None
            return self._check_times(claims)
        raise InvalidToken(f"bad signature: {last_error}")

    def _check_times(self, claims: dict[str, Any]) -> dict[str, Any]:
        """RFC 7519 NumericDate: exp, nbf and iat are numbers (PyJWT also takes numeric
        strings); and a token may not live longer than the configured maximum."""
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise InvalidToken(f"claim {name!r} is not a number")
        if self.max_lifetime_seconds is not None:
            lifetime = claims["exp"] - claims["iat"]
            if lifetime > self.max_lifetime_seconds:
                raise InvalidToken(
                    f"token lives {lifetime:.0f} s, over MODEL_SYNC_JWT_MAX_LIFETIME_SECONDS"
                )
        return claims


def describe(verifier: TokenVerifier) -> str:
    kinds = (["HS256 secret"] if verifier.secret else []) + sorted(verifier.public_keys)
    parts = [", ".join(kinds)]
    if verifier.issuer:
        parts.append(f"iss={verifier.issuer}")
    if verifier.audience:
        parts.append(f"aud={verifier.audience}")
    return json.dumps(parts)
