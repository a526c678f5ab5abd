import pytest

from oidc_broker.rules import GroupRule

ALICE = ["admins", "engineering"]
BOB = ["engineering"]


@pytest.mark.parametrize("rule,groups,incomplete,want", [
    (GroupRule.of(one_of=["admins"]), ALICE, False, True),
    (GroupRule.of(one_of=["admins"]), BOB, False, False),
    (GroupRule.of(all_of=["admins", "engineering"]), ALICE, False, True),
    (GroupRule.of(all_of=["admins", "engineering"]), BOB, False, False),
    (GroupRule.of(none_of=["contractors"]), BOB, False, True),
    (GroupRule.of(none_of=["engineering"]), BOB, False, False),
    # The IdP said its list is incomplete: a missing group could be a none_of one.
    (GroupRule.of(none_of=["contractors"]), BOB, True, False),
    (GroupRule.of(one_of=["engineering"]), BOB, True, True),
    # Flask-User: starving AND (artist OR programmer).
    (GroupRule.of("starving", ["artist", "programmer"]), ["starving", "programmer"], False, True),
    (GroupRule.of("starving", ["artist", "programmer"]), ["starving"], False, False),
    (GroupRule.of("starving", ["artist", "programmer"]), ["artist", "programmer"], False, False),
    (GroupRule.of(["funny", "witty"], ["a", "b"]), ["witty", "b"], False, True),
    (GroupRule.of(["funny", "witty"], ["a", "b"]), ["witty"], False, False),
    # The broker's docs/access.md example: all_of and one_of combine.
    (GroupRule.of(all_of=["starving"], one_of=["artist", "programmer"], none_of=["contractors"]),
     ["starving", "artist"], False, True),
    (GroupRule.of(all_of=["starving"], one_of=["artist", "programmer"], none_of=["contractors"]),
     ["starving", "artist", "contractors"], False, False),
    # Exact, case-sensitive.
    (GroupRule.of(one_of=["Admins"]), ALICE, False, False),
    (GroupRule.check_type(["admins", "x"], "all_of"), ALICE, False, False),
    (GroupRule.check_type(["admins", "x"]), ALICE, False, True),
])
def test_rule_semantics(rule, groups, incomplete, want):
    assert rule.allows(groups, incomplete) is want


def test_positional_equals_the_broker_lists():
    assert GroupRule.of("starving", ["artist", "programmer"]).allows(["starving", "artist"]) == \
        GroupRule.of(all_of=["starving"], one_of=["artist", "programmer"]).allows(["starving", "artist"])


@pytest.mark.parametrize("args,kwargs,error", [
    ((), {}, ValueError),  # no condition: use login_required
    (([],), {}, ValueError),  # never met
    ((), {"one_of": "admins"}, TypeError),  # a string where a list belongs
    ((), {"all_of": [""]}, TypeError),
    ((3,), {}, TypeError),
])
def test_invalid_rules_are_refused(args, kwargs, error):
    with pytest.raises(error):
        GroupRule.of(*args, **kwargs)


def test_check_type_must_be_known():
    with pytest.raises(ValueError):
        GroupRule.check_type(["a"], "any_of")


def test_shared_vectors():
    """The cases the broker's rules and Go's assertion.Rule check too."""
    import json
    import os
    path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "assertion", "testdata", "group-rules.json")
    with open(path) as f:
        cases = json.load(f)["cases"]
    assert len(cases) >= 20
    for c in cases:
        r = c["rule"]
        rule = GroupRule.of(*[list(e) for e in r.get("each", [])], one_of=r.get("one_of"), all_of=r.get("all_of"),
                            none_of=r.get("none_of"))
        assert rule.allows(c["groups"], c.get("incomplete", False)) is c["allowed"], c
