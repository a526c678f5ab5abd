import pytest

from oidc_broker.identity import AnonymousUser, InvalidIdentity, from_claims, from_headers


def test_headers_decode_as_the_broker_encodes():
    u = from_headers({
        "X-Auth-Request-User": "kc:248289761001", "X-Auth-Request-Provider": "kc",
        "X-Auth-Request-Email": "zo%C3%AB@example.com", "X-Auth-Request-Preferred-Username": "zo%C3%AB",
        "X-Auth-Request-Name": "Zo%C3%AB M%C3%BCller", "X-Auth-Request-Groups": "a%2Cb,c%25,d",
        "X-Auth-Request-Groups-Incomplete": "true",
    })
    assert (u.id, u.provider, u.sub, u.get_id()) == ("kc:248289761001", "kc", "248289761001", "kc:248289761001")
    assert (u.email, u.username, u.name) == ("zoë@example.com", "zoë", "Zoë Müller")
    assert u.groups == ["a,b", "c%", "d"] and u.groups_incomplete
    assert u.is_authenticated and not u.is_anonymous and u.display_name == "Zoë Müller"


def test_minimal_headers():
    u = from_headers({"X-Auth-Request-User": "gh:1", "X-Auth-Request-Provider": "gh"})
    assert u.groups == [] and u.email is None and u.name is None and not u.groups_incomplete
    assert u.display_name == "gh:1"


def test_no_headers_is_nobody():
    assert from_headers({"Accept": "text/html"}) is None


@pytest.mark.parametrize("headers", [
    {"X-Auth-Request-Groups": "admins"},  # groups without a user
    {"X-Auth-Request-User": "admin", "X-Auth-Request-Provider": "kc"},  # not <provider>:<sub>
    {"X-Auth-Request-User": "kc:1", "X-Auth-Request-Provider": "gh"},  # another provider
    {"X-Auth-Request-User": "kc:", "X-Auth-Request-Provider": "kc"},  # no sub
    {"X-Auth-Request-User": "kc:1%0D%0AX: y", "X-Auth-Request-Provider": "kc"},  # a control character
    {"X-Auth-Request-User": "kc:%FF", "X-Auth-Request-Provider": "kc"},  # not UTF-8
    {"X-Auth-Request-User": "kc:1", "X-Auth-Request-Provider": "kc", "X-Auth-Request-Groups-Incomplete": "yes"},
])
def test_bad_headers_are_refused(headers):
    with pytest.raises(InvalidIdentity):
        from_headers(headers)


def test_claims():
    u = from_claims({"sub": "kc:1", "provider": "kc", "email": "j@x", "email_verified": True, "name": "Jane",
                     "preferred_username": "jane", "groups": ["staff"], "groups_incomplete": True})
    assert (u.id, u.email, u.name, u.username, u.groups, u.groups_incomplete) == \
        ("kc:1", "j@x", "Jane", "jane", ["staff"], True)
    assert u.claims["name"] == "Jane"
    # An email the IdP did not verify is not the user's.
    assert from_claims({"sub": "kc:1", "provider": "kc", "email": "j@x"}).email is None


@pytest.mark.parametrize("claims", [
    {"sub": "kc:1"}, {"sub": "gh:1", "provider": "kc"}, {"sub": "kc:1", "provider": "kc", "groups": "staff"},
])
def test_bad_claims_are_refused(claims):
    with pytest.raises(InvalidIdentity):
        from_claims(claims)


def test_anonymous_user():
    a = AnonymousUser()
    assert not a.is_authenticated and a.is_anonymous and a.get_id() is None and a.groups == []
