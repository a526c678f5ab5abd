"""A Flask app behind oidc-broker: public home page, sign-in, groups (docs/flask.md).

With the demo broker, in two terminals (Debian's python3-flask and python3-jwt):

    go run ./cmd/oidc-broker demo --assertion --upstream http://127.0.0.1:5000
    PYTHONPATH=clients/python /usr/bin/python3 examples/flask/app.py

Open http://127.0.0.1:4180/ and sign in as alice or bob (password demo).
"""

import os

from flask import Flask, render_template_string
from werkzeug.middleware.proxy_fix import ProxyFix

from oidc_broker import BrokerAuth, current_user, groups_required, login_required

app = Flask(__name__)
# One proxy in front (the broker, or nginx): trust one value of each header it
# sets, so that url_for(..., _external=True) names the public URL.
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)
app.config.update(
    OIDC_BROKER_MODE=os.environ.get("OIDC_BROKER_MODE", "assertion"),  # or "headers"
    OIDC_BROKER_ISSUER=os.environ.get("OIDC_BROKER_ISSUER", "http://127.0.0.1:4180"),
    OIDC_BROKER_AUDIENCE=os.environ.get("OIDC_BROKER_AUDIENCE", "http://127.0.0.1:5000"),
    OIDC_BROKER_JWKS_URL=os.environ.get("OIDC_BROKER_JWKS_URL"),  # default: ISSUER/oauth2/jwks
)
BrokerAuth(app)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<script src="{{ url_for('oidc_broker.static', filename='session.js') }}"></script></head>
<body><nav>
{% if current_user.is_authenticated %}
  Hello, <span id="name">{{ current_user.display_name }}</span> ·
  <a id="sign-out-link" href="{{ logout_url() }}">Sign out</a>
{% else %}
  <a id="sign-in-link" href="{{ login_url() }}">Sign in</a>
{% endif %}
</nav>
<main><h1>{{ title }}</h1>{{ body|safe }}</main></body></html>"""

WHOAMI = """<button id="whoami" onclick="fetch('/api/me', {headers: {Accept: 'application/json'}})
  .then((r) => r.json()).then((me) => { document.getElementById('me').textContent = me.id; })">Who am I?</button>
<output id="me"></output>"""


@app.route("/")
def home():
    return render_template_string(PAGE, title="Home", body=WHOAMI)


@app.route("/reports")
@groups_required(one_of=["engineering"])
def reports():
    return render_template_string(PAGE, title="Reports", body="For engineering.")


@app.route("/admin")
@groups_required("admins", ["engineering", "ops"])  # admins AND (engineering OR ops)
def admin():
    return render_template_string(PAGE, title="Admin", body="For admins in engineering or ops.")


@app.route("/api/me")
@login_required
def me():
    return {"id": current_user.id, "name": current_user.name, "groups": current_user.groups}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
