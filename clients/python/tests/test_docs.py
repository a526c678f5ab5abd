"""Every code block of docs/flask.md, and the Python blocks of docs/assertion.md, is a file
the tests run, verbatim (<!-- file: PATH --> before the block), or an excerpt of one
(<!-- excerpt: PATH -->: its lines, stripped, appear in order in the file's)."""

import os
import re

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..")
BLOCK = re.compile(r"(?:<!-- (file|excerpt): (\S+) -->\n)?```([a-z]*)\n(.*?)```\n", re.S)


def blocks(doc):
    with open(os.path.join(ROOT, "docs", doc)) as f:
        text = f.read()
    return [m.groups() for m in BLOCK.finditer(text)]


def squeeze(text):
    return "\n".join(line.strip() for line in text.strip().splitlines())


def check(kind, path, body):
    with open(os.path.join(ROOT, path)) as f:
        source = f.read()
    if kind == "file":
        assert body == source, f"the block is not {path} verbatim"
    else:
        assert squeeze(body) in squeeze(source), f"the block is not an excerpt of {path}:\n{body}"


def test_flask_md_blocks_are_tested_code():
    found = blocks("flask.md")
    assert len(found) >= 9
    for kind, path, lang, body in found:
        assert kind, f"a ```{lang} block of docs/flask.md names no file:\n{body}"
        check(kind, path, body)


def test_assertion_md_python_recipe_is_tested_code():
    python = [b for b in blocks("assertion.md") if b[2] == "python"]
    assert len(python) >= 2
    for kind, path, lang, body in python:
        assert kind, f"a Python block of docs/assertion.md names no file:\n{body}"
        check(kind, path, body)


@pytest.mark.parametrize("body,ok", [("a\n  b\n", True), ("b\nc\n", False)])
def test_excerpt_check_itself(tmp_path, monkeypatch, body, ok):
    f = tmp_path / "src.py"
    f.write_text("x\na\n    b\nd\n")
    monkeypatch.setattr("test_docs.ROOT", str(tmp_path))
    if ok:
        check("excerpt", "src.py", body)
    else:
        with pytest.raises(AssertionError):
            check("excerpt", "src.py", body)
