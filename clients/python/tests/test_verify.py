import time

import jwt
import pytest

from conftest import AUDIENCE, ISSUER
from oidc_broker.verify import AssertionVerifier, InvalidAssertion, KeySetUnavailable


def verifier(broker, clock, **kw):
    return AssertionVerifier(ISSUER, AUDIENCE, fetch=broker.fetch, clock=clock, **kw)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_accepts_the_brokers_algorithms(broker, clock, alg):
    broker.add_key("k-" + alg, alg)
    claims = verifier(broker, clock).verify(broker.sign("k-" + alg, name="Jane"))
    assert claims["sub"] == "kc:248289761001" and claims["name"] == "Jane"


def test_jwks_url_defaults_to_the_issuers():
    assert AssertionVerifier(ISSUER + "/", AUDIENCE).jwks_url == ISSUER + "/oauth2/jwks"


@pytest.mark.parametrize("claims", [
    {"aud": "https://other.example.com"},  # another app's assertion
    {"iss": "https://evil.example.com"},
    {"exp": int(time.time()) - 31},  # past the 30 s leeway
    {"iat": int(time.time()) + 120},  # from the future
    {"nbf": int(time.time()) + 120},
    {"exp": None},  # no expiry
    {"sub": None},
    {"aud": None},
])
def test_refuses_bad_claims(broker, clock, claims):
    with pytest.raises(InvalidAssertion):
        verifier(broker, clock).verify(broker.sign(**claims))


def test_refuses_symmetric_and_unsigned_tokens(broker, clock):
    v = verifier(broker, clock)
    v.verify(broker.sign())  # the key set is cached
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "kc:1", "exp": int(time.time()) + 60}
    for token in (jwt.encode(body, "secret", algorithm="HS256", headers={"kid": "k1"}),
                  jwt.encode(body, None, algorithm="none", headers={"kid": "k1"}),
                  "not a token", ""):
        with pytest.raises(InvalidAssertion):
            v.verify(token)


def test_refuses_a_token_of_another_key(broker, clock):
    broker.add_key("stranger", publish=False)
    with pytest.raises(InvalidAssertion):
        verifier(broker, clock).verify(broker.sign("stranger"))


def test_refuses_a_key_used_with_another_algorithm(broker, clock):
    broker.add_key("ed", "EdDSA")
    token = broker.sign("ed")
    header, rest = token.split(".", 1)
    forged = jwt.utils.base64url_encode(b'{"alg":"ES256","kid":"ed","typ":"JWT"}').decode() + "." + rest
    with pytest.raises(InvalidAssertion):
        verifier(broker, clock).verify(forged)


def test_unknown_kids_refetch_at_most_once_per_interval(broker, clock):
    v = verifier(broker, clock)
    v.verify(broker.sign())
    assert broker.fetches == 1
    broker.add_key("stranger", publish=False)
    forged = broker.sign("stranger")
    with pytest.raises(InvalidAssertion):
        v.verify(forged)
    assert broker.fetches == 1  # the key set was fetched just now
    clock.now += 30
    for _ in range(5):
        with pytest.raises(InvalidAssertion):
            v.verify(forged)
    assert broker.fetches == 2  # one refetch for the unknown kid, then none for 30 s
    clock.now += 30
    with pytest.raises(InvalidAssertion):
        v.verify(forged)
    assert broker.fetches == 3


def test_rotation_a_new_key_is_fetched(broker, clock):
    v = verifier(broker, clock)
    v.verify(broker.sign())
    clock.now += 31
    broker.add_key("k2", "EdDSA")
    assert v.verify(broker.sign("k2"))["sub"] == "kc:248289761001"


def test_removed_key_refused_after_max_age(broker, clock):
    broker.add_key("k2")
    v = verifier(broker, clock)
    old = broker.sign("k1")
    v.verify(old)
    broker.published.remove("k1")
    clock.now += 299
    v.verify(old)  # cached
    clock.now += 1
    with pytest.raises(InvalidAssertion):
        v.verify(old)


def test_failed_refresh_keeps_the_cached_keys(broker, clock):
    v = verifier(broker, clock)
    token = broker.sign()
    v.verify(token)
    broker.down = True
    clock.now += 600
    assert v.verify(token)["sub"] == "kc:248289761001"


def test_no_key_set_yet_is_unavailable(broker, clock):
    broker.down = True
    v = verifier(broker, clock)
    with pytest.raises(KeySetUnavailable):
        v.verify(broker.sign())
    broker.down = False
    with pytest.raises(KeySetUnavailable):
        v.verify(broker.sign())  # retried once a second before the first success
    clock.now += 1
    assert v.verify(broker.sign())["provider"] == "kc"


def test_config_fails_closed():
    with pytest.raises(ValueError):
        AssertionVerifier("", AUDIENCE)
    with pytest.raises(ValueError):
        AssertionVerifier(ISSUER, "")
    with pytest.raises(ValueError):
        AssertionVerifier(ISSUER, AUDIENCE, leeway=120)


def test_known_keys_do_not_wait_for_a_fetch(broker, clock):
    """A refetch for an unknown kid (a forged token, say) runs while requests with known keys
    are verified without waiting for it."""
    import threading
    v = verifier(broker, clock)
    token = broker.sign()
    v.verify(token)
    started, release = threading.Event(), threading.Event()
    fetch = v._fetch

    def slow_fetch(url, timeout):
        started.set()
        release.wait(10)
        return fetch(url, timeout)
    v._fetch = slow_fetch
    clock.now += 30
    broker.add_key("stranger", publish=False)
    forged = broker.sign("stranger")
    t = threading.Thread(target=lambda: pytest.raises(InvalidAssertion, v.verify, forged))
    t.start()
    assert started.wait(10)
    verified = threading.Event()
    reader = threading.Thread(target=lambda: v.verify(token) and verified.set())
    reader.start()
    try:
        # While the fetch is held, a token of a known key is verified (with one lock for
        # both, it would wait for the fetch and this would fail).
        assert verified.wait(10)
    finally:
        release.set()
        t.join(10)
        reader.join(10)
