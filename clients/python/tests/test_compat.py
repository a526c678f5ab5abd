"""The package is pure Python 3.9+: its syntax parses as 3.9's, and it imports only the
standard library, PyJWT and Flask (Werkzeug comes with Flask); dash only inside
protected_callback."""

import ast
import os
import sys

import pytest

PACKAGE = os.path.join(os.path.dirname(__file__), "..", "oidc_broker")
MODULES = sorted(f for f in os.listdir(PACKAGE) if f.endswith(".py"))


@pytest.mark.parametrize("name", MODULES)
def test_python_39_syntax_and_imports(name):
    with open(os.path.join(PACKAGE, name)) as f:
        tree = ast.parse(f.read(), name, feature_version=(3, 9))
    allowed = set(sys.stdlib_module_names) | {"jwt", "flask", "werkzeug", "__future__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots = [node.module.split(".")[0]]
        else:
            continue
        for root in roots:
            assert root in allowed or (root == "dash" and name == "dash.py"), f"{name} imports {root}"
