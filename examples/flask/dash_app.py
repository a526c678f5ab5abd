"""A Dash app behind oidc-broker (docs/flask.md): Dash runs on Flask, so the
extension goes on app.server. Dash is not a Debian package: pip install dash.

    go run ./cmd/oidc-broker serve --config examples/flask/dash-broker.yaml
    PYTHONPATH=clients/python python3 examples/flask/dash_app.py
"""

import os

from dash import Dash, Input, Output, dcc, html
from werkzeug.middleware.proxy_fix import ProxyFix

from oidc_broker import BrokerAuth, current_user, login_url, logout_url
from oidc_broker.dash import check_groups, list_groups, protected_callback

# session.js sends the browser to sign in when a callback gets 401 because the
# session ended mid-session, and back to this page afterwards.
app = Dash(__name__, external_scripts=["/static/oidc_broker/session.js"])
app.server.wsgi_app = ProxyFix(app.server.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)
app.server.config.update(
    OIDC_BROKER_ISSUER=os.environ.get("OIDC_BROKER_ISSUER", "http://127.0.0.1:4180"),
    OIDC_BROKER_AUDIENCE=os.environ.get("OIDC_BROKER_AUDIENCE", "http://127.0.0.1:8050"),
)
BrokerAuth(app)


def layout():
    """Built for each page load (Dash fetches it from /_dash-layout), so it knows the user."""
    if not current_user.is_authenticated:
        return html.Div([html.H1("Sales"), html.A("Sign in", href=login_url("/"))])
    return html.Div([
        html.P(["Hello, ", current_user.display_name, " · ", html.A("Sign out", href=logout_url())]),
        dcc.Dropdown(["Q1", "Q2", "Q3", "Q4"], "Q1", id="quarter"),
        html.Div(id="report"),
        html.Div("Admin tools", id="admin", hidden=not check_groups(["admins"])),
    ])


app.layout = layout


@protected_callback(Output("report", "children"), Input("quarter", "value"),
                    groups=["engineering", "sales"], check_type="one_of",
                    missing_permissions_output="Reports are for engineering and sales.")
def report(quarter):
    return f"{quarter} report for {current_user.display_name} ({', '.join(list_groups())})"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8050)
