"""The app side of oidc-broker for Flask and Dash (docs/flask.md).

``BrokerAuth`` reads the identity the broker relays (its signed assertion, or
its headers); ``current_user``, ``login_required`` and ``groups_required`` work
as in Flask-Login and Flask-User; ``oidc_broker.dash`` has dash-auth's helpers.
"""

from .flask import (BrokerAuth, check_groups, current_user, groups_required, list_groups, login_required,
                    login_url, logout_url)
from .identity import AnonymousUser, InvalidIdentity, User
from .rules import GroupRule
from .verify import AssertionVerifier, InvalidAssertion, KeySetUnavailable

__all__ = ["BrokerAuth", "current_user", "login_required", "groups_required", "login_url", "logout_url",
           "check_groups", "list_groups", "User", "AnonymousUser", "GroupRule", "AssertionVerifier",
           "InvalidAssertion", "InvalidIdentity", "KeySetUnavailable"]
__version__ = "0.1.0"
