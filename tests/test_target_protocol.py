"""Every target kind offers what callers use of a target (`targets.Target`), and no target reads the config."""

from __future__ import annotations

import importlib
import inspect

import pytest

from gisgate.targets import TARGETS, Target

MEMBERS = [name for name, value in vars(Target).items() if inspect.isfunction(value) and not name.startswith("_")]


def target_class(kind: str) -> type:
    module, _, cls = TARGETS[kind].partition(":")
    return getattr(importlib.import_module(module), cls)


def accepts(method, wanted: inspect.Signature) -> list[str]:
    """What keeps `method` from being called as `wanted` says (by position or by name)."""
    have = inspect.signature(method).parameters
    problems = [f"no parameter {name!r}" for name in wanted.parameters if name not in have]
    problems += [f"{name!r} is required" for name, p in have.items()
                 if name not in wanted.parameters and p.default is p.empty
                 and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    order = [name for name in have if name in wanted.parameters]
    if not problems and order != list(wanted.parameters):
        problems.append(f"parameters in another order: {order}")
    return problems


def test_the_protocol_says_what_callers_use():
    assert MEMBERS == ["deliver", "probe", "outcomes", "close"]
    assert "name" in inspect.get_annotations(Target)


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_every_target_kind_has_each_protocol_member_with_a_compatible_signature(kind):
    cls = target_class(kind)
    assert "name" in inspect.get_annotations(cls), f"{cls.__name__} does not declare `name: str`"
    for member in MEMBERS:
        method = getattr(cls, member, None)
        assert callable(method), f"{cls.__name__} has no {member}()"
        problems = accepts(method, inspect.signature(getattr(Target, member)))
        assert not problems, f"{cls.__name__}.{member}: {problems}"
