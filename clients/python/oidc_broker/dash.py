"""For Dash apps (their Flask back end, ``app.server``): dash-auth's group helpers.

    from oidc_broker import BrokerAuth
    from oidc_broker.dash import protected_callback, check_groups, list_groups

    BrokerAuth(app)   # the Dash app: its Flask server is used

    @protected_callback(Output("report", "children"), Input("go", "n_clicks"), groups=["analysts"])
    def report(n):
        ...

A callback of a signed-out user (the session ended mid-session, or a public
page) answers 401 with the broker's JSON, unless ``unauthenticated_output`` is
given; the page script ``oidc_broker/static/session.js`` (copy it into the Dash
app's ``assets/``) then sends the browser to sign in and back. A user the rule
refuses gets ``missing_permissions_output``, or 403.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

from flask import abort

from .flask import _json, check_groups, current_user, list_groups, sign_in_required
from .rules import GroupRule

__all__ = ["protected", "protected_callback", "check_groups", "list_groups"]


def _rule(groups, check_type, one_of, all_of, none_of) -> Optional[GroupRule]:
    kw = {"one_of": one_of, "all_of": all_of, "none_of": none_of}
    if groups is not None:
        if check_type not in kw:
            raise ValueError(f"check_type must be one_of, all_of or none_of, not {check_type!r}")
        kw[check_type] = list(kw[check_type] or []) + list(groups)
    if not any(kw.values()):
        return None  # any signed-in user
    return GroupRule.of(**kw)


def _output(value: Any, *args: Any, **kwargs: Any) -> Any:
    return value(*args, **kwargs) if callable(value) else value


def protected(unauthenticated_output: Any = None, missing_permissions_output: Any = None,
              groups: Optional[list] = None, check_type: str = "one_of", *,
              one_of=None, all_of=None, none_of=None) -> Callable:
    """dash-auth's ``protected``: runs the function only for a signed-in user the rule allows.

    Otherwise it returns ``unauthenticated_output`` or ``missing_permissions_output``
    (called with the function's arguments when callable), or, when that is None,
    ends the request with 401 (the broker's JSON with ``sign_in_url``) or 403.
    """
    rule = _rule(groups, check_type, one_of, all_of, none_of)

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user
            if not user.is_authenticated:
                if unauthenticated_output is None:
                    abort(sign_in_required())
                return _output(unauthenticated_output, *args, **kwargs)
            if rule is not None and not rule.allows(user.groups, user.groups_incomplete):
                if missing_permissions_output is None:
                    abort(_json(403, {"error": "access denied"}))
                return _output(missing_permissions_output, *args, **kwargs)
            return func(*args, **kwargs)
        return wrapped
    return decorator


def protected_callback(*callback_args: Any, unauthenticated_output: Any = None,
                       missing_permissions_output: Any = None, groups: Optional[list] = None,
                       check_type: str = "one_of", one_of=None, all_of=None, none_of=None,
                       **callback_kwargs: Any) -> Callable:
    """dash-auth's ``protected_callback``: ``dash.callback`` with ``protected``."""
    import dash  # only here: the rest of the package works without Dash

    def decorator(func: Callable) -> Callable:
        guarded = protected(unauthenticated_output, missing_permissions_output, groups, check_type,
                            one_of=one_of, all_of=all_of, none_of=none_of)(func)
        return dash.callback(*callback_args, **callback_kwargs)(guarded)
    return decorator
