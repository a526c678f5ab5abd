"""Fixtures: a broker's signing keys and key set, made here with real keys."""

import json
import os
import sys
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

ISSUER = "https://auth.example.com"
AUDIENCE = "https://dash.example.com"


class Broker:
    """Signs assertions as the broker does and serves its key set to a verifier."""

    def __init__(self):
        self.keys = {}  # kid -> (alg, private key)
        self.published = []  # kids in the key set
        self.fetches = 0
        self.max_age = 300
        self.down = False

    def add_key(self, kid, alg="ES256", publish=True):
        priv = {"ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
                "EdDSA": ed25519.Ed25519PrivateKey.generate,
                "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)}[alg]()
        self.keys[kid] = (alg, priv)
        if publish:
            self.published.append(kid)
        return priv

    def jwks(self):
        keys = []
        for kid in self.published:
            alg, priv = self.keys[kid]
            if alg == "ES256":  # PyJWT 2.6's to_jwk drops leading zero bytes; the broker pads to 32
                n = priv.public_key().public_numbers()
                b64 = lambda i: jwt.utils.base64url_encode(i.to_bytes(32, "big")).decode()  # noqa: E731
                jwk = {"kty": "EC", "crv": "P-256", "x": b64(n.x), "y": b64(n.y)}
            else:
                jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(priv.public_key()))
            jwk.update(kid=kid, alg=alg, use="sig")
            keys.append(jwk)
        return {"keys": keys}

    def fetch(self, url, timeout):
        self.fetches += 1
        if self.down:
            raise OSError("connection refused")
        return self.jwks(), self.max_age

    def sign(self, kid="k1", **claims):
        alg, priv = self.keys[kid]
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "kc:248289761001", "provider": "kc", "iat": now, "exp": now + 300}
        body.update(claims)
        for k in [k for k, v in body.items() if v is None]:
            del body[k]
        return jwt.encode(body, priv, algorithm=alg, headers={"kid": kid})


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def broker():
    b = Broker()
    b.add_key("k1")
    return b


@pytest.fixture
def clock():
    return Clock()
