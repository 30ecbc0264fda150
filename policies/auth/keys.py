"""Signing keys of the built-in issuer, and the key sets tokens are verified against."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
from joserfc.jwk import KeySet, RSAKey

KEY_PARAMETERS = {"use": "sig", "alg": "RS256"}


def generate_signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters=KEY_PARAMETERS, auto_kid=True)


def load_or_create_signing_key(path: str) -> RSAKey:
    """The issuer's RSA key from a PEM file, created (mode 0600) if missing.

    Replicas that share one issuer need the same key: give them the same file.
    """
    file = Path(path)
    if file.exists():
        return import_signing_key(file.read_bytes())
    key = generate_signing_key()
    file.parent.mkdir(parents=True, exist_ok=True)
    # Replicas starting together on a fresh volume race to create the file: each writes a whole key
    # beside it and links it into place, which only one link can do; the others read the winner's.
    draft = file.with_name(f".{file.name}.{os.getpid()}.{time.monotonic_ns()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(key.as_pem(private=True))
        os.link(draft, file)
    except FileExistsError:
        return load_or_create_signing_key(path)
    finally:
        draft.unlink(missing_ok=True)
    return key


def import_signing_key(pem: bytes) -> RSAKey:
    key = RSAKey.import_key(pem, parameters=KEY_PARAMETERS)
    key.ensure_kid()  # a thumbprint (RFC 7638): the same key gets the same kid wherever it is read
    return key


class KeyRing:
    """The issuer's keys: the first signs; every one verifies and is published in the JWKS (keys that
    signed before a rotation stay until the tokens they signed have expired)."""

    def __init__(self, signing: RSAKey, retired: Sequence[RSAKey] = ()) -> None:
        self.signing = signing
        self.keys = (signing, *(key for key in retired if key.kid != signing.kid))
        self.public = KeySet([RSAKey.import_key(key.as_dict(private=False)) for key in self.keys])

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(str(key.kid) for key in self.keys)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.keys]}


class JwksSource(Protocol):
    async def get_key_set(self, *, refresh: bool = False) -> KeySet: ...


class StaticJwks:
    def __init__(self, key_set: KeySet) -> None:
        self._key_set = key_set

    async def get_key_set(self, *, refresh: bool = False) -> KeySet:
        return self._key_set


class RemoteJwks:
    """An issuer's JWKS fetched over HTTP, cached, and fetched again when a token names an unknown kid.

    Refetches are rate-limited so that tokens with made-up kids cannot make us hammer the issuer.
    """

    def __init__(
        self,
        url: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        min_refresh_interval: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self._url = url
        self._http = http_client
        self._min_refresh_interval = min_refresh_interval
        self._timeout = timeout
        self._key_set: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get_key_set(self, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            stale = time.monotonic() - self._fetched_at >= self._min_refresh_interval
            if self._key_set is None or (refresh and stale):
                self._key_set = await self._fetch()
                self._fetched_at = time.monotonic()
            return self._key_set

    async def _fetch(self) -> KeySet:
        if self._http is not None:
            response = await self._http.get(self._url, timeout=self._timeout)
        else:
            async with httpx.AsyncClient() as http:
                response = await http.get(self._url, timeout=self._timeout)
        response.raise_for_status()
        return KeySet.import_key_set(response.json())
