"""Verifying the broker's signed identity assertion (docs/assertion.md) with PyJWT.

The key set is fetched from the broker's ``/oauth2/jwks``, cached for its
``Cache-Control: max-age`` (5 minutes from the broker), and fetched again when a
token names a key id that is not cached (a rotation added a key), but never
more often than once per ``min_refresh_interval``: tokens with made-up key ids
cannot make the app hammer the broker. When a fetch fails, the cached keys keep
working. This is what the Go package ``assertion`` does.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from typing import Any, Callable, Dict, Optional, Tuple

import jwt

__all__ = ["AssertionVerifier", "InvalidAssertion", "KeySetUnavailable", "ALGORITHMS", "DEFAULT_HEADER"]

# The signature algorithms accepted: asymmetric ones only. "none" and HS256 are
# always refused, so nobody can sign with a public key or with no key.
ALGORITHMS = ("ES256", "EdDSA", "RS256")

DEFAULT_HEADER = "X-Auth-Request-Assertion"

_MAX_KEY_SET = 1 << 20  # bytes read of a key set response, at most
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)\s*(?:,|$)", re.I)


class InvalidAssertion(Exception):
    """The token is not a valid assertion of this broker for this app."""


class KeySetUnavailable(Exception):
    """The broker's key set has never been fetched: no token can be checked (answer 503)."""


def _fetch(url: str, timeout: float) -> Tuple[Dict[str, Any], Optional[int]]:
    req = urllib.request.Request(url, headers={"Accept": "application/jwk-set+json, application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the configured URL)
        body = resp.read(_MAX_KEY_SET + 1)
        cache_control = resp.headers.get("Cache-Control", "")
    if len(body) > _MAX_KEY_SET:
        raise InvalidAssertion(f"the key set at {url} is larger than {_MAX_KEY_SET} bytes")
    m = _MAX_AGE.search(cache_control)
    return json.loads(body), int(m.group(1)) if m else None


class AssertionVerifier:
    """Checks assertions against the broker's key set. Safe for concurrent use.

    ``issuer`` is the broker's public base URL (the assertion's ``iss``, exactly),
    ``audience`` this app's audience at the broker, ``jwks_url`` the key set
    (default ``issuer + "/oauth2/jwks"``). All are required: verification fails
    closed. The key set is fetched on first use.
    """

    def __init__(self, issuer: str, audience: str, jwks_url: Optional[str] = None, *, leeway: float = 30,
                 min_refresh_interval: float = 30, default_max_age: float = 300, timeout: float = 10,
                 fetch: Optional[Callable[[str, float], Tuple[Dict[str, Any], Optional[int]]]] = None,
                 clock: Callable[[], float] = time.monotonic):
        if not issuer or not audience:
            raise ValueError("oidc_broker: the assertion's issuer and audience are required")
        if not 0 <= leeway <= 60:
            raise ValueError("oidc_broker: leeway must be between 0 and 60 seconds")
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url or issuer.rstrip("/") + "/oauth2/jwks"
        self.leeway = leeway
        self.min_refresh_interval = min_refresh_interval
        self.default_max_age = default_max_age
        self.timeout = timeout
        self._fetch = fetch or _fetch
        self._clock = clock
        self._fetch_lock = threading.Lock()  # one fetch at a time; lookups do not wait for it
        # (keys by kid as (alg, key), when fetched or None, max-age): replaced whole, so a
        # lookup reads one consistent state without a lock.
        self._state: Tuple[Dict[str, Tuple[str, jwt.PyJWK]], Optional[float], float] = ({}, None, default_max_age)
        self._last_attempt: Optional[float] = None

    def verify(self, token: str) -> Dict[str, Any]:
        """Returns the claims of a valid assertion; raises InvalidAssertion otherwise.

        Checks: the signature, by the broker key the token's ``kid`` names, with
        ES256, EdDSA or RS256 only; ``iss`` exactly; ``aud`` contains the
        audience; ``exp`` present and not past, ``iat`` and ``nbf`` not in the
        future (with ``leeway``); ``sub`` present.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise InvalidAssertion(f"not a JWT: {e}") from e
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise InvalidAssertion(f"algorithm {alg!r} is not accepted")
        if not isinstance(kid, str) or not kid:
            raise InvalidAssertion("the token names no key (kid)")
        key_alg, key = self._key(kid)
        if key_alg != alg:
            raise InvalidAssertion(f"key {kid!r} is for {key_alg}, the token says {alg}")
        try:
            return jwt.decode(token, key.key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                              leeway=self.leeway, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError as e:
            raise InvalidAssertion(str(e)) from e

    def _key(self, kid: str) -> Tuple[str, jwt.PyJWK]:
        keys, fetched_at, max_age = self._state
        if kid in keys and fetched_at is not None and self._clock() - fetched_at < max_age:
            return keys[kid]
        with self._fetch_lock:
            keys, fetched_at, max_age = self._state  # another thread may have fetched meanwhile
            now = self._clock()
            stale = fetched_at is None or now - fetched_at >= max_age
            if (kid not in keys or stale) and self._may_fetch(now, fetched_at):
                self._refresh(now, fetched_at)
            keys, fetched_at, _ = self._state
        if fetched_at is None:
            raise KeySetUnavailable(f"the key set at {self.jwks_url} has not been fetched yet")
        key = keys.get(kid)
        if key is None:
            raise InvalidAssertion(f"no key {kid!r} in the broker's key set")
        return key

    def _may_fetch(self, now: float, fetched_at: Optional[float]) -> bool:
        # Until a first fetch succeeded (the app started before the broker),
        # once a second; then once per min_refresh_interval.
        wait = 1.0 if fetched_at is None else self.min_refresh_interval
        return self._last_attempt is None or now - self._last_attempt >= wait

    def _refresh(self, now: float, fetched_at: Optional[float]) -> None:
        self._last_attempt = now
        try:
            data, max_age = self._fetch(self.jwks_url, self.timeout)
            keys = {}
            for jwk in data.get("keys", []):
                if isinstance(jwk, dict) and jwk.get("kid") and jwk.get("alg") in ALGORITHMS:
                    keys[jwk["kid"]] = (jwk["alg"], jwt.PyJWK(jwk, jwk["alg"]))
        except Exception as e:  # noqa: BLE001 - the cached keys keep working; the next fetch may succeed
            if fetched_at is None:
                raise KeySetUnavailable(f"the key set at {self.jwks_url} could not be fetched: {e}") from e
            return
        self._state = (keys, now, float(max_age) if max_age is not None else self.default_max_age)
