"""Verifying the broker's assertion with PyJWT alone, in any Flask app (a Dash
app: app.server), for apps that cannot use the oidc_broker package
(docs/assertion.md). Public pages keep working: a request without an
assertion is anonymous; one with a bad assertion is refused.
"""

import flask
import jwt  # PyJWT

BROKER = "https://auth.example.com"    # the broker's public URL: the assertion's iss
AUDIENCE = "https://dash.example.com"  # this app's audience at the broker
jwks = jwt.PyJWKClient(BROKER + "/oauth2/jwks", cache_keys=True, lifespan=300)


def verified_identity(token):
    """The identity the broker asserts; raises jwt.PyJWTError otherwise."""
    key = jwks.get_signing_key_from_jwt(token)  # refetches the key set for an unknown kid
    return jwt.decode(
        token, key.key,
        algorithms=["ES256", "EdDSA", "RS256"],  # never HS256 or none
        audience=AUDIENCE, issuer=BROKER, leeway=30,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


server = flask.Flask(__name__)  # with Dash: server = app.server


@server.before_request
def load_identity():
    """None without an assertion (a public page); 401 for a bad one."""
    flask.g.identity = None
    token = flask.request.headers.get("X-Auth-Request-Assertion")
    if token is None:
        return None
    try:
        flask.g.identity = verified_identity(token)
    except jwt.PyJWTError:
        flask.abort(401)
    return None


def identity_required(view):
    """For the pages that need a user; the broker's rules should require one too."""
    def wrapped(*args, **kwargs):
        if flask.g.identity is None:
            flask.abort(401)
        return view(*args, **kwargs)
    wrapped.__name__ = view.__name__
    return wrapped


@server.route("/")
def home():
    who = flask.g.identity["name"] if flask.g.identity else "guest"  # also ["sub"], ["groups"], ["email"]
    return f"Hello, {who}"


@server.route("/reports")
@identity_required
def reports():
    return "reports for " + flask.g.identity["sub"]
