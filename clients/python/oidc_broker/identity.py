"""The signed-in user as the broker relays it, in the shape Flask-Login users know."""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional
from urllib.parse import unquote

__all__ = ["User", "AnonymousUser", "InvalidIdentity", "from_headers", "from_claims", "HEADERS"]


class InvalidIdentity(ValueError):
    """The request carries an identity that is not well-formed or not valid: refuse it."""


# The identity headers the broker relays (docs/headers.md).
HEADERS = {
    "user": "X-Auth-Request-User",
    "provider": "X-Auth-Request-Provider",
    "email": "X-Auth-Request-Email",
    "username": "X-Auth-Request-Preferred-Username",
    "name": "X-Auth-Request-Name",
    "groups": "X-Auth-Request-Groups",
    "groups_incomplete": "X-Auth-Request-Groups-Incomplete",
}


class User:
    """A signed-in user.

    ``id`` is ``<provider>:<sub>`` (the same as ``X-Auth-Request-User`` and the
    assertion's ``sub``): the one value that identifies a user across identity
    providers. Never key accounts on ``email`` or ``username`` alone: two
    providers can issue the same.
    """

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, id: str, provider: str, *, email: Optional[str] = None, name: Optional[str] = None,
                 username: Optional[str] = None, groups: Iterable[str] = (), groups_incomplete: bool = False,
                 claims: Optional[Mapping[str, Any]] = None):
        self.id = id
        self.provider = provider
        self.sub = id[len(provider) + 1:]
        self.email = email  # only when the identity provider verified it
        self.name = name
        self.username = username  # the identity provider's preferred_username
        self.groups: List[str] = list(groups)
        self.groups_incomplete = groups_incomplete
        self.claims = dict(claims) if claims is not None else None  # the assertion's, in assertion mode

    def get_id(self) -> str:
        """Flask-Login's name for ``id``."""
        return self.id

    @property
    def display_name(self) -> str:
        """The name to greet the user with: name, else username, else email, else id."""
        return self.name or self.username or self.email or self.id

    def __repr__(self) -> str:
        return f"<User {self.id!r}>"


class AnonymousUser:
    """Nobody is signed in (a public route reached without a session)."""

    is_authenticated = False
    is_active = False
    is_anonymous = True
    id = sub = provider = email = name = username = claims = None
    groups: List[str] = []
    groups_incomplete = False
    display_name = ""

    def get_id(self) -> None:
        return None

    def __repr__(self) -> str:
        return "<AnonymousUser>"


def _split_user(user: str, provider: str) -> None:
    if not provider or not user.startswith(provider + ":") or len(user) == len(provider) + 1:
        raise InvalidIdentity("the user is not <provider>:<sub> with the provider it names")


def _decoded(value: str, what: str) -> str:
    out = unquote(value, errors="strict")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in out):
        raise InvalidIdentity(f"{what} holds a control character")
    return out


def from_headers(headers: Mapping[str, str]) -> Optional[User]:
    """Reads the identity headers (docs/headers.md): None when there is none.

    Values are percent-decoded as the broker encodes them; the groups are split
    on ``,`` first. Headers that name no well-formed user raise InvalidIdentity.
    Only safe when every request reaches the app through the broker, which
    removes a client's own ``X-Auth-Request-*`` headers.
    """
    present = {k: headers.get(h) for k, h in HEADERS.items() if headers.get(h) is not None}
    if not present:
        return None
    try:
        user = _decoded(present.get("user", ""), "the user")
        provider = _decoded(present.get("provider", ""), "the provider")
        _split_user(user, provider)
        groups = [_decoded(g, "a group") for g in present["groups"].split(",")] if present.get("groups") else []
        incomplete = present.get("groups_incomplete")
        if incomplete not in (None, "true"):
            raise InvalidIdentity("X-Auth-Request-Groups-Incomplete is not \"true\"")
        return User(user, provider,
                    email=_decoded(present["email"], "the email") if present.get("email") else None,
                    name=_decoded(present["name"], "the name") if present.get("name") else None,
                    username=_decoded(present["username"], "the username") if present.get("username") else None,
                    groups=groups, groups_incomplete=incomplete == "true")
    except UnicodeDecodeError as e:
        raise InvalidIdentity("a value is not UTF-8 after percent-decoding") from e


def from_claims(claims: Mapping[str, Any]) -> User:
    """The user a verified assertion names (docs/assertion.md)."""
    user, provider = claims.get("sub"), claims.get("provider")
    if not isinstance(user, str) or not isinstance(provider, str):
        raise InvalidIdentity("the assertion has no sub or provider")
    _split_user(user, provider)
    groups = claims.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise InvalidIdentity("the assertion's groups are not a list of strings")
    email = claims.get("email") if claims.get("email_verified") is True else None
    return User(user, provider, email=email, name=claims.get("name") or None,
                username=claims.get("preferred_username") or None, groups=groups,
                groups_incomplete=claims.get("groups_incomplete") is True, claims=claims)
