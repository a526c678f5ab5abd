import json

import pytest
from flask import Flask, render_template_string
from werkzeug.middleware.proxy_fix import ProxyFix

from conftest import AUDIENCE, ISSUER
from oidc_broker import (AssertionVerifier, BrokerAuth, current_user, groups_required, login_required, login_url,
                         logout_url)

BOB = {"X-Auth-Request-User": "acme:acme-bob", "X-Auth-Request-Provider": "acme",
       "X-Auth-Request-Email": "bob@acme.example", "X-Auth-Request-Preferred-Username": "bob",
       "X-Auth-Request-Name": "Bob Brown", "X-Auth-Request-Groups": "engineering"}


def make_app(**settings):
    app = Flask(__name__)
    BrokerAuth(app, **settings)

    @app.route("/")
    def home():
        return render_template_string(
            "{% if current_user.is_authenticated %}Hello, {{ current_user.name }}"
            " <a href='{{ logout_url() }}'>Sign out</a>"
            "{% else %}<a href='{{ login_url() }}'>Sign in</a>{% endif %}")

    @app.route("/me")
    @login_required
    def me():
        return {"id": current_user.id, "groups": current_user.groups}

    @app.route("/reports", methods=["GET", "POST"])
    @groups_required(one_of=["engineering"])
    def reports():
        return "reports"

    @app.route("/admin")
    @groups_required("admins", ["engineering", "ops"])
    def admin():
        return "admin"

    @app.route("/clean")
    @groups_required(none_of=["contractors"])
    def clean():
        return "clean"

    return app


@pytest.fixture
def headers_app():
    return make_app(mode="headers").test_client()


@pytest.fixture
def assertion_app(broker, clock):
    v = AssertionVerifier(ISSUER, AUDIENCE, fetch=broker.fetch, clock=clock)
    return make_app(verifier=v).test_client()


def test_anonymous_public_page(headers_app):
    r = headers_app.get("/?x=1")
    assert r.status_code == 200
    assert "<a href='/oauth2/sign_in?rd=%2F%3Fx%3D1'>Sign in</a>" in r.text


def test_browser_is_sent_to_sign_in(headers_app):
    r = headers_app.get("/reports?q=a%20b")
    assert r.status_code == 302 and r.headers["Location"] == "/oauth2/sign_in?rd=%2Freports%3Fq%3Da%2520b"


@pytest.mark.parametrize("method,headers", [("POST", {}), ("GET", {"Accept": "application/json"})])
def test_api_client_gets_the_brokers_401(headers_app, method, headers):
    r = headers_app.open("/reports", method=method, headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Cookie realm="oidc-broker"'
    assert r.json == {"error": "not signed in", "sign_in_url": "/oauth2/sign_in?rd=%2Freports"}


def test_signed_in_user(headers_app):
    r = headers_app.get("/", headers=BOB)
    assert "Hello, Bob Brown <a href='/oauth2/sign_out'>Sign out</a>" in r.text
    assert headers_app.get("/me", headers=BOB).json == {"id": "acme:acme-bob", "groups": ["engineering"]}
    assert headers_app.get("/reports", headers=BOB).status_code == 200
    assert headers_app.get("/admin", headers=BOB).status_code == 403
    assert headers_app.get("/admin", headers={**BOB, "Accept": "application/json"}).json == {"error": "access denied"}
    alice = {**BOB, "X-Auth-Request-User": "acme:acme-alice", "X-Auth-Request-Groups": "admins,engineering"}
    assert headers_app.get("/admin", headers=alice).status_code == 200


def test_groups_incomplete_fails_none_of(headers_app):
    assert headers_app.get("/clean", headers=BOB).status_code == 200
    assert headers_app.get("/clean", headers={**BOB, "X-Auth-Request-Groups-Incomplete": "true"}).status_code == 403


def test_bad_headers_are_refused_everywhere(headers_app):
    r = headers_app.get("/", headers={"X-Auth-Request-User": "admin"})
    assert r.status_code == 401 and r.json == {"error": "invalid identity"}


def test_assertion_mode(assertion_app, broker):
    token = broker.sign(sub="acme:acme-bob", provider="acme", name="Bob Brown", groups=["engineering"])
    hdr = {"X-Auth-Request-Assertion": token}
    assert "Hello, Bob Brown" in assertion_app.get("/", headers=hdr).text
    assert assertion_app.get("/reports", headers=hdr).status_code == 200
    assert assertion_app.get("/admin", headers=hdr).status_code == 403


def test_assertion_mode_ignores_plain_headers(assertion_app):
    # Without an assertion nobody is signed in, whatever headers say.
    r = assertion_app.get("/", headers=BOB)
    assert "Sign in" in r.text
    assert assertion_app.get("/reports", headers=BOB).status_code == 302


def test_assertion_mode_public_route_is_anonymous(assertion_app, broker):
    assert assertion_app.get("/").status_code == 200
    assert broker.fetches == 0  # nothing to verify


@pytest.mark.parametrize("token", ["forged", ""])
def test_bad_assertion_is_refused(assertion_app, broker, token):
    r = assertion_app.get("/", headers={"X-Auth-Request-Assertion": token})
    assert r.status_code == 401 and r.json == {"error": "invalid identity"}


def test_another_apps_assertion_is_refused(assertion_app, broker):
    r = assertion_app.get("/", headers={"X-Auth-Request-Assertion": broker.sign(aud="https://other.example.com")})
    assert r.status_code == 401


def test_key_set_down_is_503(broker, clock):
    broker.down = True
    app = make_app(verifier=AssertionVerifier(ISSUER, AUDIENCE, fetch=broker.fetch, clock=clock)).test_client()
    assert app.get("/", headers={"X-Auth-Request-Assertion": broker.sign()}).status_code == 503


def test_config_from_app_config():
    app = Flask(__name__)
    app.config.update(OIDC_BROKER_ISSUER=ISSUER, OIDC_BROKER_AUDIENCE=AUDIENCE,
                      OIDC_BROKER_JWKS_URL="http://127.0.0.1:4180/oauth2/jwks")
    ext = BrokerAuth(app)
    assert ext.mode == "assertion" and ext.verifier.jwks_url == "http://127.0.0.1:4180/oauth2/jwks"


@pytest.mark.parametrize("settings", [{}, {"issuer": ISSUER}, {"mode": "trust"}])
def test_config_fails_closed(settings):
    with pytest.raises(ValueError):
        BrokerAuth(Flask(__name__), **settings)


def test_dash_app_is_accepted():
    class DashLike:
        server = Flask(__name__)
    BrokerAuth(DashLike(), mode="headers")
    assert "oidc_broker" in DashLike.server.extensions
    with pytest.raises(TypeError):
        BrokerAuth(object(), mode="headers")


def test_urls_behind_proxyfix_and_another_broker():
    app = make_app(mode="headers", url="https://auth.example.com/")
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1, x_prefix=1)
    c = app.test_client()
    r = c.get("/reports?a=1", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "dash.example.com",
                                       "X-Forwarded-Prefix": "/dash"})
    assert r.headers["Location"] == ("https://auth.example.com/oauth2/sign_in?rd="
                                     "https%3A%2F%2Fdash.example.com%2Fdash%2Freports%3Fa%3D1")
    with app.test_request_context("/"):
        assert logout_url("https://dash.example.com/") == \
            "https://auth.example.com/oauth2/sign_out?rd=https%3A%2F%2Fdash.example.com%2F"
    same = make_app(mode="headers")
    same.wsgi_app = ProxyFix(same.wsgi_app, x_prefix=1)
    with same.test_request_context("/x", headers={"X-Forwarded-Prefix": "/dash"}):
        same.preprocess_request()
        assert login_url() == "/oauth2/sign_in?rd=%2Fx"  # test_request_context skips the WSGI middleware
        assert login_url("/dash/x") == "/oauth2/sign_in?rd=%2Fdash%2Fx"
    r = same.test_client().get("/reports", headers={"X-Forwarded-Prefix": "/dash"})
    assert r.headers["Location"] == "/oauth2/sign_in?rd=%2Fdash%2Freports"


def test_current_user_outside_a_request():
    assert not current_user.is_authenticated
    assert json.dumps(current_user.groups) == "[]"


def test_session_script_is_served(headers_app):
    r = headers_app.get("/static/oidc_broker/session.js")
    assert r.status_code == 200 and b"sign_in_url" in r.data
    with headers_app.application.test_request_context("/"):
        from flask import url_for
        assert url_for("oidc_broker.static", filename="session.js") == "/static/oidc_broker/session.js"


def test_jinja_globals():
    app = Flask(__name__)
    BrokerAuth(app, mode="headers")

    @app.route("/t")
    def t():
        return render_template_string(
            "{{ current_user.username }}|{{ check_groups(['engineering']) }}|{{ check_groups(['x'], 'all_of') }}|"
            "{{ list_groups() | join(',') if list_groups() else list_groups() }}|{{ login_url('/x') }}|{{ logout_url('/') }}")
    assert app.test_client().get("/t", headers=BOB).text == \
        "bob|True|False|engineering|/oauth2/sign_in?rd=%2Fx|/oauth2/sign_out?rd=%2F"
    assert app.test_client().get("/t").text == "None|None|None|None|/oauth2/sign_in?rd=%2Fx|/oauth2/sign_out?rd=%2F"


def test_refused_browser_gets_the_apps_403_page():
    app = make_app(mode="headers")
    app.register_error_handler(403, lambda e: ("<h1>Not for you</h1>", 403))
    r = app.test_client().get("/admin", headers=BOB)
    assert r.status_code == 403 and r.text == "<h1>Not for you</h1>"
