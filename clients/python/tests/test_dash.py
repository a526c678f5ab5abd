"""oidc_broker.dash through Flask (Dash itself is not installed here): the
callback guard runs inside the request Dash's /_dash-update-component is."""

import sys
import types

import pytest
from flask import Flask, jsonify

from oidc_broker import BrokerAuth
from oidc_broker.dash import check_groups, list_groups, protected, protected_callback

BOB = {"X-Auth-Request-User": "acme:acme-bob", "X-Auth-Request-Provider": "acme",
       "X-Auth-Request-Groups": "engineering"}


@pytest.fixture
def client():
    app = Flask(__name__)
    BrokerAuth(app, mode="headers")

    @protected(groups=["engineering"])
    def report(n):
        return f"report {n}"

    @protected(unauthenticated_output="please sign in", missing_permissions_output=lambda n: f"no access {n}",
               groups=["admins"])
    def admin(n):
        return f"admin {n}"

    @app.route("/_dash-update-component", methods=["POST"])
    def update():
        return jsonify(report=report(1), admin=admin(2), groups=list_groups(),
                       one=check_groups(["engineering", "x"]), all=check_groups(["engineering", "x"], "all_of"),
                       none=check_groups(["admins"], "none_of"))
    return app.test_client()


def test_signed_in(client):
    assert client.post("/_dash-update-component", headers=BOB).json == {
        "report": "report 1", "admin": "no access 2", "groups": ["engineering"],
        "one": True, "all": False, "none": True}


def test_session_ended_mid_session_is_401_with_sign_in_url(client):
    r = client.post("/_dash-update-component")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Cookie realm="oidc-broker"'
    assert r.json == {"error": "not signed in", "sign_in_url": "/oauth2/sign_in?rd=%2F_dash-update-component"}


def test_missing_permission_is_403(client):
    r = client.post("/_dash-update-component", headers={**BOB, "X-Auth-Request-Groups": "sales"})
    assert r.status_code == 403 and r.json == {"error": "access denied"}


def test_anonymous_helpers_say_none():
    app = Flask(__name__)
    BrokerAuth(app, mode="headers")
    with app.test_request_context("/"):
        app.preprocess_request()
        assert list_groups() is None and check_groups(["a"]) is None
        assert protected(unauthenticated_output=lambda: "out")(lambda: "in")() == "out"


def test_protected_callback_registers_with_dash(monkeypatch):
    registered = {}

    def callback(*args, **kwargs):
        def register(f):
            registered.update(args=args, kwargs=kwargs, f=f)
            return f
        return register
    monkeypatch.setitem(sys.modules, "dash", types.SimpleNamespace(callback=callback))

    @protected_callback("out", "in", groups=["engineering"], prevent_initial_call=True,
                        unauthenticated_output="signed out")
    def f(n):
        return n

    assert registered["args"] == ("out", "in") and registered["kwargs"] == {"prevent_initial_call": True}
    app = Flask(__name__)
    BrokerAuth(app, mode="headers")
    with app.test_request_context("/"):
        app.preprocess_request()
        assert registered["f"](7) == "signed out"


def test_check_type_must_be_known():
    with pytest.raises(ValueError):
        protected(groups=["a"], check_type="some_of")
