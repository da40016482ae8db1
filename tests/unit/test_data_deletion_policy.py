"""The admission policy that makes changes deleting data confirmed, evaluated in Python with
the CEL the chart ships (the API server's verdicts: tests/security/test_data_deletion_confirmed.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from celpy import celtypes

from dataproduct_operator.api.cel import compile_cel
from dataproduct_operator.constants import ANNOTATION_CONFIRM_DATA_DELETION
from dataproduct_operator.manifests.admission import (
    EXPRESSION,
    MESSAGE_EXPRESSION,
    VARIABLES,
    build_data_deletion_policy,
)


def _plain(value: Any) -> Any:
    """A CEL result as JSON-like Python, to feed the next variable."""
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.ListType):
        return [str(item) for item in value]
    return value


def judge(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """None when the update is admitted, else the refusal's message."""
    variables: dict[str, Any] = {}
    for name, expression in VARIABLES:
        context = {"object": new, "oldObject": old, "variables": variables}
        variables[name] = _plain(compile_cel(expression).evaluate(context))
    context = {"object": new, "oldObject": old, "variables": variables}
    if compile_cel(EXPRESSION).holds(context):
        return None
    return compile_cel(MESSAGE_EXPRESSION).text(context)


def product(policy: str | None, *ports: str, confirm: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"outputPorts": [{"name": port} for port in ports]}
    if policy:
        spec["deletionPolicy"] = policy
    metadata: dict[str, Any] = {"name": "orders"}
    if confirm is not None:
        metadata["annotations"] = {ANNOTATION_CONFIRM_DATA_DELETION: confirm}
    return {"metadata": metadata, "spec": spec}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (product("Retain", "a", "b"), product("Retain", "a")),  # the claim is kept
        (product("Delete", "a"), product("Delete", "a", "b")),  # adding deletes nothing
        (product("Delete", "a", "b"), product("Retain", "a", "b")),
        (product(None, "a"), product("Retain", "a")),  # Retain is the default
        (product("Retain", "a", "b"), product("Delete", "a", "b", confirm=" b , a ")),
        (product("Delete", "a", "b", "c"), product("Delete", "a", confirm="c,b")),
        (product("Delete", "a", "b"), product("Retain", "a", confirm="b")),
    ],
)
def test_changes_that_delete_nothing_or_are_confirmed_are_admitted(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    assert judge(old, new) is None


def test_switching_to_delete_needs_every_port_confirmed() -> None:
    annotation = f'{ANNOTATION_CONFIRM_DATA_DELETION}: "a,b"'
    assert judge(product("Retain", "a", "b"), product("Delete", "a", "b")) == (
        "this change deletes the data of the output ports a, b (deletionPolicy Retain to "
        f"Delete: the data of every port goes with the product); to confirm, add the annotation "
        f"{annotation}"
    )
    partial = judge(product(None, "a", "b"), product("Delete", "a", "b", confirm="a"))
    assert partial is not None and partial.startswith(
        "this change deletes the data of the output ports b ("
    )


def test_removing_a_port_while_delete_before_or_after_needs_it_confirmed() -> None:
    message = judge(product("Delete", "a", "b", "c"), product("Delete", "a", confirm="b"))
    assert message == (
        "this change deletes the data of the output ports c (removed while deletionPolicy is "
        f'Delete); to confirm, add the annotation {ANNOTATION_CONFIRM_DATA_DELETION}: "b,c"'
    )
    assert judge(product("Delete", "a", "b"), product("Retain", "a")) is not None
    assert judge(product("Retain", "a", "b"), product("Delete", "a", confirm="a")) is not None


def test_the_policy_judges_updates_of_dataproducts_and_denies() -> None:
    policy, binding = build_data_deletion_policy()
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["operations"] == ["UPDATE"] and rule["resources"] == ["dataproducts"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
