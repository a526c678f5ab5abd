"""The Flask extension: who the broker says the user is, for Flask and Dash apps.

    auth = BrokerAuth(app)            # or BrokerAuth() and auth.init_app(app)

    @app.route("/reports")
    @groups_required("staff", ["analysts", "admins"])   # staff AND (analysts OR admins)
    def reports():
        return f"Hello, {current_user.name}"

Two modes (``OIDC_BROKER_MODE``):

- ``"assertion"`` (the default): the identity is the broker's signed assertion,
  verified against the broker's key set (docs/assertion.md). Safe whatever can
  reach the app.
- ``"headers"``: the identity is the ``X-Auth-Request-*`` headers
  (docs/headers.md). Safe ONLY when every request reaches the app through the
  broker (or the proxy that asks it): anyone who reaches the app directly can
  send any header.

A request without an identity is an anonymous user (a public route); one with
an identity that does not check out gets 401 and never reaches a view.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Union
from urllib.parse import quote

from flask import Blueprint, Flask, Response, abort, current_app, g, has_request_context, json, redirect, request
from werkzeug.local import LocalProxy

from .identity import AnonymousUser, InvalidIdentity, User, from_claims, from_headers
from .rules import GroupRule
from .verify import DEFAULT_HEADER, AssertionVerifier, InvalidAssertion, KeySetUnavailable

__all__ = ["BrokerAuth", "current_user", "login_required", "groups_required", "login_url", "logout_url",
           "check_groups", "list_groups", "sign_in_required", "SESSION_CHALLENGE"]

# The challenge of a 401 for want of a session, as the broker sends it: a
# cookie session obtained by signing in, not a bearer token.
SESSION_CHALLENGE = 'Cookie realm="oidc-broker"'

_ANONYMOUS = AnonymousUser()


class BrokerAuth:
    """Reads the identity the broker relays on every request of a Flask app.

    Settings, as keyword arguments or in ``app.config`` (keywords win):

    ``OIDC_BROKER_MODE``      ``"assertion"`` (default) or ``"headers"`` (see the module's doc).
    ``OIDC_BROKER_ISSUER``    assertion mode: the broker's public URL, the assertion's ``iss``.
    ``OIDC_BROKER_AUDIENCE``  assertion mode: this app's audience at the broker.
    ``OIDC_BROKER_JWKS_URL``  assertion mode: the key set; default ``ISSUER + "/oauth2/jwks"``.
    ``OIDC_BROKER_HEADER``    assertion mode: the header; default ``X-Auth-Request-Assertion``.
    ``OIDC_BROKER_URL``       where browsers reach the broker's pages: ``""`` (default) when
                              they are under ``/oauth2/`` of the app's own origin, else its
                              base URL (``https://auth.example.com``).
    """

    def __init__(self, app: Any = None, **settings: Any):
        self._settings = {k.upper(): v for k, v in settings.items()}
        self.verifier: Optional[AssertionVerifier] = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> None:
        """Installs the extension; a Dash app is accepted for its Flask server."""
        app = getattr(app, "server", app)
        if not isinstance(app, Flask):
            raise TypeError("oidc_broker: init_app needs a Flask app or a Dash app")

        def setting(name: str, default: Any = None) -> Any:
            key = "OIDC_BROKER_" + name
            return self._settings.get(name, app.config.get(key, default))

        mode = setting("MODE", "assertion")
        if mode == "assertion":
            verifier = setting("VERIFIER")
            if verifier is None:
                issuer, audience = setting("ISSUER"), setting("AUDIENCE")
                if not issuer or not audience:
                    raise ValueError("oidc_broker: assertion mode needs OIDC_BROKER_ISSUER and OIDC_BROKER_AUDIENCE")
                verifier = AssertionVerifier(issuer, audience, setting("JWKS_URL"))
            self.verifier = verifier
        elif mode != "headers":
            raise ValueError(f"oidc_broker: OIDC_BROKER_MODE must be \"assertion\" or \"headers\", not {mode!r}")
        self.mode = mode
        self.header = setting("HEADER", DEFAULT_HEADER)
        self.broker_url = str(setting("URL", "")).rstrip("/")
        app.extensions["oidc_broker"] = self
        # The page script (session.js) at /static/oidc_broker/session.js: under
        # /static/, which the broker's routes usually make public.
        app.register_blueprint(Blueprint("oidc_broker", __name__, static_folder="static",
                                         static_url_path="/static/oidc_broker"))
        app.before_request(self._load_user)
        app.context_processor(lambda: {"current_user": _current()})
        app.jinja_env.globals.update(login_url=login_url, logout_url=logout_url,
                                     check_groups=check_groups, list_groups=list_groups)

    def identity(self) -> Union[User, AnonymousUser]:
        """The request's user; raises InvalidIdentity, InvalidAssertion or KeySetUnavailable."""
        if self.mode == "headers":
            return from_headers(request.headers) or _ANONYMOUS
        token = request.headers.get(self.header)
        if token is None:
            return _ANONYMOUS
        assert self.verifier is not None
        return from_claims(self.verifier.verify(token.strip()))

    def _load_user(self) -> Optional[Response]:
        try:
            g._oidc_broker_user = self.identity()
        except KeySetUnavailable as e:
            current_app.logger.error("oidc_broker: %s", e)
            return _json(503, {"error": "the sign-in service's keys are unavailable"})
        except (InvalidIdentity, InvalidAssertion) as e:
            current_app.logger.info("oidc_broker: identity refused: %s (%s %s)", e, request.method, request.path)
            return _json(401, {"error": "invalid identity"})
        return None


def _json(status: int, body: dict, headers: Optional[dict] = None) -> Response:
    resp = Response(json.dumps(body) + "\n", status=status, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _ext() -> BrokerAuth:
    ext = current_app.extensions.get("oidc_broker")
    if ext is None:
        raise RuntimeError("oidc_broker: BrokerAuth(app) has not been set up for this app")
    return ext


def _current() -> Union[User, AnonymousUser]:
    if not has_request_context():
        return _ANONYMOUS
    user = g.get("_oidc_broker_user")
    if user is None:  # a request before before_request ran (an error handler)
        try:
            user = _ext().identity()
        except (InvalidIdentity, InvalidAssertion, KeySetUnavailable):
            user = _ANONYMOUS
        g._oidc_broker_user = user
    return user


#: The signed-in user of the request, or an anonymous user (``is_authenticated`` False).
current_user: Union[User, AnonymousUser] = LocalProxy(_current)  # type: ignore[assignment]


def _here() -> str:
    """The request's URL as rd: a path on the app's origin when the broker shares
    it, else absolute (which needs ProxyFix behind a proxy; see docs/flask.md)."""
    if _ext().broker_url.startswith(("http://", "https://")):
        return request.url
    path = request.script_root + request.path
    query = request.query_string.decode("latin-1")
    return path + ("?" + query if query else "")


def login_url(next: Optional[str] = None) -> str:
    """The broker's sign-in page, which returns to ``next`` (default: this request's URL)."""
    rd = next if next is not None else _here()
    return f"{_ext().broker_url}/oauth2/sign_in?rd={quote(rd, safe='')}"


def logout_url(next: Optional[str] = None) -> str:
    """The broker's sign-out page, which returns to ``next`` when given."""
    url = f"{_ext().broker_url}/oauth2/sign_out"
    return url if next is None else f"{url}?rd={quote(next, safe='')}"


def _wants_redirect() -> bool:
    """A browser navigation, as the broker tells it: GET or HEAD, not asking for JSON."""
    return (request.method in ("GET", "HEAD") and "Upgrade" not in request.headers
            and "application/json" not in request.headers.get("Accept", ""))


def sign_in_required() -> Response:
    """What an anonymous request to a protected view gets: the sign-in page for a
    browser, else 401 with the broker's JSON (``sign_in_url``), which the page
    script (``oidc_broker/static/session.js``) follows."""
    if _wants_redirect():
        return redirect(login_url(), 302)
    return _json(401, {"error": "not signed in", "sign_in_url": login_url()},
                 {"WWW-Authenticate": SESSION_CHALLENGE})


def forbidden() -> Response:
    """What a signed-in user a rule refuses gets: the app's 403 page (``abort(403)``, so an
    ``errorhandler(403)`` renders it) for a browser, else JSON."""
    if _wants_redirect():
        abort(403)
    return _json(403, {"error": "access denied"})


def login_required(view: Callable) -> Callable:
    """Serves the view to signed-in users only (Flask-Login's ``login_required``)."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return sign_in_required()
        return view(*args, **kwargs)
    return wrapped


def groups_required(*positional: Union[str, list, tuple], one_of=None, all_of=None, none_of=None) -> Callable:
    """Serves the view to signed-in users whose groups meet the rule (rules.GroupRule).

    ``groups_required("starving", ["artist", "programmer"])`` is Flask-User's
    ``roles_required``: starving AND (artist OR programmer). ``one_of``,
    ``all_of`` and ``none_of`` are the broker's rule lists. Anonymous: as
    login_required; signed in but refused: 403.
    """
    rule = GroupRule.of(*positional, one_of=one_of, all_of=all_of, none_of=none_of)

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user
            if not user.is_authenticated:
                return sign_in_required()
            if not rule.allows(user.groups, user.groups_incomplete):
                return forbidden()
            return view(*args, **kwargs)
        return wrapped
    return decorator


def list_groups() -> Optional[list]:
    """The user's groups, or None when nobody is signed in (dash-auth's ``list_groups``)."""
    user = current_user
    return list(user.groups) if user.is_authenticated else None


def check_groups(groups: Optional[list] = None, check_type: str = "one_of", *, one_of=None, all_of=None,
                 none_of=None) -> Optional[bool]:
    """dash-auth's ``check_groups``: whether the user's groups pass, None when nobody is
    signed in. ``groups`` is checked as ``check_type``; the keyword lists add to it."""
    user = current_user
    if not user.is_authenticated:
        return None
    kw = {"one_of": one_of, "all_of": all_of, "none_of": none_of}
    if groups is not None:
        if check_type not in kw:
            raise ValueError(f"check_type must be one_of, all_of or none_of, not {check_type!r}")
        kw[check_type] = list(kw[check_type] or []) + list(groups)
    return GroupRule.of(**kw).allows(user.groups, user.groups_incomplete)
