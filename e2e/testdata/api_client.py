#!/usr/bin/env python3
"""An API client that calls an app behind oidc-broker with an access token.

It gets a token from the IdP's token endpoint with the OAuth 2.0 client
credentials grant (RFC 6749 section 4.4), then calls each URL with
"Authorization: Bearer <token>" and prints one JSON line per call: the status,
the WWW-Authenticate challenge of a refusal, any cookie set (none: a token
makes no session), and the app's JSON answer. The token itself is never
printed. docs/api-clients.md quotes this script;
e2e/TestAPIClientWithClientCredentials runs it through nginx auth_request and
through the broker's reverse proxy.

    TOKEN_URL=https://idp.example.com/token CLIENT_ID=reporting \\
    CLIENT_SECRET=... SCOPE=reports.read [RESOURCE=api://reports] \\
    python3 api_client.py https://reports.example.com/api/summary ...

RESOURCE is sent as the RFC 8707 "resource" parameter, for IdPs that take the
token's audience from it (npm oidc-provider); Keycloak, Entra ID (in SCOPE:
"api://reports/.default") and Okta (the authorization server's audience) need
none. ACCESS_TOKEN, when set, is used instead of asking the IdP.
"""
import json
import os
import sys

import requests


def access_token():
    if os.environ.get("ACCESS_TOKEN"):
        return os.environ["ACCESS_TOKEN"]
    form = {"grant_type": "client_credentials", "scope": os.environ["SCOPE"]}
    if os.environ.get("RESOURCE"):
        form["resource"] = os.environ["RESOURCE"]
    resp = requests.post(os.environ["TOKEN_URL"], data=form,
                         auth=(os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"]),
                         timeout=10)
    resp.raise_for_status()
    return resp.json()["access_token"]


def main(urls):
    api = requests.Session()
    api.headers["Authorization"] = "Bearer " + access_token()
    api.headers["Accept"] = "application/json"
    for url in urls:
        resp = api.get(url, timeout=10, allow_redirects=False)
        is_json = resp.headers.get("Content-Type", "").startswith("application/json")
        print(json.dumps({
            "url": url,
            "status": resp.status_code,
            "www_authenticate": resp.headers.get("WWW-Authenticate", ""),
            "set_cookie": resp.headers.get("Set-Cookie", ""),
            "body": resp.json() if is_json else resp.text[:200],
        }))


if __name__ == "__main__":
    main(sys.argv[1:])
