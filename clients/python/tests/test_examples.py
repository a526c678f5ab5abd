"""The examples docs/flask.md and docs/assertion.md quote, run: examples/flask/app.py,
dash_app.py (against a stand-in for Dash, which is not packaged here) and the plain-PyJWT
recipe (against a key set served over HTTP)."""

import http.server
import importlib.util
import json
import os
import sys
import threading
import types

import pytest

from conftest import AUDIENCE, ISSUER

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "flask")
BOB = {"X-Auth-Request-User": "acme:acme-bob", "X-Auth-Request-Provider": "acme",
       "X-Auth-Request-Name": "Bob Brown", "X-Auth-Request-Groups": "engineering"}
# What the broker's reverse proxy sends an app (broker/proxy.go: the origin it trusts).
FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "dash.example.com",
             "X-Forwarded-Port": "443", "X-Forwarded-Prefix": "/sales"}


def load(name, monkeypatch, **env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flask_example(monkeypatch):
    app = load("app", monkeypatch, OIDC_BROKER_MODE="headers").app
    c = app.test_client()
    assert 'id="sign-in-link" href="/oauth2/sign_in?rd=%2F"' in c.get("/").text
    page = c.get("/", headers=BOB).text
    assert 'Hello, <span id="name">Bob Brown</span>' in page and '/static/oidc_broker/session.js' in page
    assert c.get("/reports", headers=BOB).status_code == 200
    assert c.get("/admin", headers=BOB).status_code == 403
    assert c.get("/api/me", headers=BOB).json == {"id": "acme:acme-bob", "name": "Bob Brown", "groups": ["engineering"]}
    assert c.get("/api/me", headers={"Accept": "application/json"}).status_code == 401


def test_flask_example_external_urls_behind_the_broker(monkeypatch):
    """ProxyFix as the example sets it: url_for(_external=True) is the public URL."""
    from flask import request, url_for
    app = load("app", monkeypatch, OIDC_BROKER_MODE="headers").app

    @app.route("/where")
    def where():
        return {"url": url_for("reports", _external=True), "remote": request.remote_addr}
    r = app.test_client().get("/where", headers=FORWARDED)
    assert r.json == {"url": "https://dash.example.com/sales/reports", "remote": "203.0.113.7"}
    # The login link returns to the page under its public prefix.
    r = app.test_client().get("/reports", headers=FORWARDED)
    assert r.headers["Location"] == "/oauth2/sign_in?rd=%2Fsales%2Freports"


def test_flask_example_defaults_to_the_assertion(monkeypatch):
    for k in ("OIDC_BROKER_MODE", "OIDC_BROKER_ISSUER", "OIDC_BROKER_AUDIENCE", "OIDC_BROKER_JWKS_URL"):
        monkeypatch.delenv(k, raising=False)
    app = load("app", monkeypatch).app
    ext = app.extensions["oidc_broker"]
    assert ext.mode == "assertion" and ext.verifier.jwks_url == "http://127.0.0.1:4180/oauth2/jwks"
    assert ext.verifier.audience == "http://127.0.0.1:5000"
    # Headers alone sign nobody in.
    assert "Sign in" in app.test_client().get("/", headers=BOB).text


class FakeDash(types.ModuleType):
    """Just enough of dash for examples/flask/dash_app.py: Dash(server=Flask), callbacks
    registered, components as plain dicts."""

    def __init__(self):
        super().__init__("dash")
        from flask import Flask
        self.callbacks = []
        outer = self

        class Dash:
            def __init__(self, name, external_scripts=()):
                self.server = Flask(name)
                self.external_scripts = list(external_scripts)
                self.layout = None

            def run(self, **kw):
                raise AssertionError("not run in tests")

        def component(kind):
            return lambda children=None, **props: {"type": kind, "children": children, **props}

        def callback(*args, **kwargs):
            def register(f):
                outer.callbacks.append((args, kwargs, f))
                return f
            return register

        self.Dash = Dash
        self.callback = callback
        self.Input = lambda i, p: ("in", i, p)
        self.Output = lambda i, p: ("out", i, p)
        self.html = types.SimpleNamespace(Div=component("Div"), H1=component("H1"), P=component("P"), A=component("A"))
        self.dcc = types.SimpleNamespace(
            Dropdown=lambda options=None, value=None, **props: {"type": "Dropdown", "options": options, "value": value, **props})


def test_dash_example(monkeypatch):
    dash = FakeDash()
    monkeypatch.setitem(sys.modules, "dash", dash)
    mod = load("dash_app", monkeypatch, OIDC_BROKER_ISSUER=ISSUER, OIDC_BROKER_AUDIENCE=AUDIENCE)
    server = mod.app.server
    assert mod.app.external_scripts == ["/static/oidc_broker/session.js"]
    (args, kwargs, report), = dash.callbacks
    assert args == (("out", "report", "children"), ("in", "quarter", "value"))
    ext = server.extensions["oidc_broker"]
    ext.mode = "headers"  # the assertion's verification is tested elsewhere; here: what the app does

    with server.test_request_context("/_dash-layout", headers=BOB):
        server.preprocess_request()
        page = mod.layout()
        assert page["children"][0]["children"] == ["Hello, ", "Bob Brown", " · ",
                                                   {"type": "A", "children": "Sign out", "href": "/oauth2/sign_out"}]
        assert page["children"][3]["hidden"] is True  # bob is not in admins
        assert report("Q2") == "Q2 report for Bob Brown (engineering)"
    with server.test_request_context("/_dash-update-component", method="POST",
                                     headers={**BOB, "X-Auth-Request-Groups": "support"}):
        server.preprocess_request()
        assert report("Q2") == "Reports are for engineering and sales."
    with server.test_request_context("/_dash-layout"):
        server.preprocess_request()
        assert mod.layout()["children"][1] == {"type": "A", "children": "Sign in", "href": "/oauth2/sign_in?rd=%2F"}
    # A callback whose session ended mid-session: 401 with the sign-in URL for session.js.
    r = server.test_client().post("/_dash-update-component")
    assert r.status_code == 404  # the stand-in serves no callbacks; the guard itself:
    with server.test_request_context("/_dash-update-component", method="POST"):
        server.preprocess_request()
        from werkzeug.exceptions import HTTPException
        with pytest.raises(HTTPException) as e:
            report("Q2")
        assert e.value.response.status_code == 401
        assert json.loads(e.value.response.get_data())["sign_in_url"] == "/oauth2/sign_in?rd=%2F_dash-update-component"


@pytest.fixture
def jwks_server(broker):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(broker.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/jwk-set+json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_pyjwt_recipe(monkeypatch, broker, jwks_server):
    import jwt
    recipe = load("pyjwt_recipe", monkeypatch)
    monkeypatch.setattr(recipe, "BROKER", ISSUER)
    monkeypatch.setattr(recipe, "AUDIENCE", AUDIENCE)
    monkeypatch.setattr(recipe, "jwks", jwt.PyJWKClient(jwks_server + "/oauth2/jwks", cache_keys=True, lifespan=300))
    c = recipe.server.test_client()
    assert c.get("/").text == "Hello, guest"  # a public page without an assertion
    assert c.get("/reports").status_code == 401
    token = broker.sign(name="Jane Doe")
    assert c.get("/", headers={"X-Auth-Request-Assertion": token}).text == "Hello, Jane Doe"
    assert c.get("/reports", headers={"X-Auth-Request-Assertion": token}).text == "reports for kc:248289761001"
    assert c.get("/", headers={"X-Auth-Request-Assertion": "forged"}).status_code == 401
    assert c.get("/", headers={"X-Auth-Request-Assertion": broker.sign(aud="https://other.example")}).status_code == 401
