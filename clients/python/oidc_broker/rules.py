"""Group rules with the semantics of the broker's access rules (docs/access.md).

A rule is met when every condition that is set holds:

- ``one_of``: the user has at least one of these groups;
- ``all_of``: the user has all of these groups;
- ``none_of``: the user has none of these groups, and the identity provider did
  not say its group list is incomplete (Entra ID's "groups overage": a missing
  group could be one of these);
- ``each`` (the positional form of Flask-User's ``roles_required``): every entry
  is a list of groups of which the user has at least one. ``GroupRule.positional(
  'starving', ['artist', 'programmer'])`` is "starving AND (artist OR
  programmer)".

Groups are compared exactly (case-sensitive), as the broker relays them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence, Tuple, Union

__all__ = ["GroupRule"]

Positional = Union[str, Sequence[str]]


def _names(values: Optional[Iterable[str]], what: str) -> Tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        raise TypeError(f"{what}: a list of group names, not the string {values!r}")
    out = tuple(values)
    for v in out:
        if not isinstance(v, str) or not v:
            raise TypeError(f"{what}: group names are non-empty strings, not {v!r}")
    return out


@dataclass(frozen=True)
class GroupRule:
    """Conditions on a user's groups; each one that is set must hold."""

    one_of: Tuple[str, ...] = ()
    all_of: Tuple[str, ...] = ()
    none_of: Tuple[str, ...] = ()
    each: Tuple[Tuple[str, ...], ...] = field(default=())

    @classmethod
    def of(cls, *positional: Positional, one_of=None, all_of=None, none_of=None) -> "GroupRule":
        """Builds a rule from Flask-User's positional form and the keyword lists.

        A positional string is a group the user must have; a positional list is
        a set of groups of which the user must have one. Keywords add the
        broker's ``one_of``, ``all_of`` and ``none_of``. A rule with no
        condition at all is refused (``ValueError``): it would let every
        signed-in user through, which ``login_required`` says more plainly.
        """
        each = []
        for i, p in enumerate(positional):
            if isinstance(p, str):
                each.append(_names([p], f"positional argument {i}"))
                continue
            alternatives = _names(p, f"positional argument {i}")
            if not alternatives:
                raise ValueError(f"positional argument {i}: an empty list of groups can never be met")
            each.append(alternatives)
        rule = cls(one_of=_names(one_of, "one_of"), all_of=_names(all_of, "all_of"),
                   none_of=_names(none_of, "none_of"), each=tuple(each))
        if not (rule.one_of or rule.all_of or rule.none_of or rule.each):
            raise ValueError("a group rule needs at least one group (use login_required for any signed-in user)")
        return rule

    @classmethod
    def check_type(cls, groups: Sequence[str], check_type: str = "one_of") -> "GroupRule":
        """dash-auth's form: ``groups`` checked as ``one_of``, ``all_of`` or ``none_of``."""
        if check_type not in ("one_of", "all_of", "none_of"):
            raise ValueError(f"check_type must be one_of, all_of or none_of, not {check_type!r}")
        return cls.of(**{check_type: groups})

    def allows(self, groups: Iterable[str], incomplete: bool = False) -> bool:
        """Reports whether a user with these groups meets every condition."""
        have = set(groups)
        if self.one_of and have.isdisjoint(self.one_of):
            return False
        if any(g not in have for g in self.all_of):
            return False
        if self.none_of and (incomplete or not have.isdisjoint(self.none_of)):
            return False
        return all(not have.isdisjoint(alternatives) for alternatives in self.each)
