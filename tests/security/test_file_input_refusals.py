"""A file input (``spec.inputs[].file``) that would leak a credential or read outside its claim
is refused by the real API server at ``kubectl apply``, with the message that says what to
change: a URL with a user or password, a URL that is not http(s), a path with a leading / or a
``..`` segment, both or neither of url and volume."""

from __future__ import annotations

from typing import Any

import pytest

from dataproduct_operator.api.dataproduct import (
    FILE_PATH_ABSOLUTE_MESSAGE,
    FILE_PATH_PARENT_MESSAGE,
    FILE_URL_MESSAGE,
    URL_CREDENTIALS_MESSAGE,
)
from tests.clusters import KubectlRunner, apply_as_user
from tests.products import example

ONE_PLACE = "a file input sets exactly one of url (http or https) or volume"


def _with_file(namespace: str, **file: Any) -> dict[str, Any]:
    """The example product with a file input, which its sql-less pipelines do not read."""
    product = example(namespace)
    product["spec"]["inputs"] = [{"name": "drop", "file": {"format": "csv", **file}}]
    return product


def _volume(path: str) -> dict[str, str]:
    return {"claimName": "drop-box", "path": path}


@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize(
    ("file", "field", "message"),
    [
        ({"url": "https://reader:s3cret@files.example.com/o.csv"}, "url", URL_CREDENTIALS_MESSAGE),
        ({"url": "file:///etc/passwd"}, "url", FILE_URL_MESSAGE),
        ({"volume": _volume("../other-team/o.csv")}, "volume", FILE_PATH_PARENT_MESSAGE),
        ({"volume": _volume("/etc/passwd")}, "volume", FILE_PATH_ABSOLUTE_MESSAGE),
        ({"url": "https://files.example.com/o.csv", "volume": _volume("o.csv")}, "", ONE_PLACE),
    ],
    ids=["credentials", "scheme", "parent", "absolute", "both"],
)
def test_a_file_input_out_of_bounds_is_refused_with_what_to_change(
    kubectl: KubectlRunner, namespace: str, file: dict[str, Any], field: str, message: str
) -> None:
    accepted, printed = apply_as_user(kubectl, _with_file(namespace, **file))
    assert not accepted, printed
    where = "spec.inputs[0].file" + (f".{field}" if field else "")
    assert f"{where}: Invalid value: " in printed, printed
    assert message in printed, printed


def test_a_file_input_within_bounds_is_accepted(
    kubectl: KubectlRunner, crds: None, namespace: str
) -> None:
    for file in ({"url": "https://files.example.com/o.csv?day=1"}, {"volume": _volume("a/o.csv")}):
        accepted, printed = apply_as_user(kubectl, _with_file(namespace, **file))
        assert accepted, printed
