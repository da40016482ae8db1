"""Where run events go and under which namespace, checked before the operator starts (layer
``openlineage``, pure).

The URL must be plain http(s) without credentials (it is logged); a URL without a path posts to
``/api/v1/lineage``, the endpoint of OpenLineage's HTTP transport and of Marquez. The namespace
names the operator's jobs in the lineage backend: one per cluster, say.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

DEFAULT_ENDPOINT = "/api/v1/lineage"
DEFAULT_NAMESPACE = "dataproduct-operator"
MAX_URL_LENGTH = 2048
MAX_NAMESPACE_LENGTH = 253
NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]*")


class OpenLineageSettingError(ValueError):
    """A URL or namespace the operator will not use; the message says what to change."""


def check_url(url: str) -> str:
    """The URL events are POSTed to: ``url`` itself, or with ``/api/v1/lineage`` when it has
    no path. :class:`OpenLineageSettingError` when it is not a plain http(s) URL."""
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH:
        raise OpenLineageSettingError(
            f"the OpenLineage URL must be at most {MAX_URL_LENGTH} characters"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OpenLineageSettingError(
            f"the OpenLineage URL must be http://HOST[:PORT][/PATH] or https://..., not {url!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise OpenLineageSettingError(
            "the OpenLineage URL must hold no user name or password (it is logged): give the "
            "URL alone"
        )
    if parts.fragment:
        raise OpenLineageSettingError("the OpenLineage URL must have no #fragment")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise OpenLineageSettingError(
            "the OpenLineage URL's port must be a number from 1 to 65535"
        ) from None
    path = parts.path if parts.path not in ("", "/") else DEFAULT_ENDPOINT
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def shown_url(url: str) -> str:
    """The URL as the log shows it: without its query, which may carry a token."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def check_namespace(namespace: str) -> str:
    """``namespace`` when it can name the operator's jobs, else :class:`OpenLineageSettingError`."""
    if len(namespace) > MAX_NAMESPACE_LENGTH or not NAMESPACE.fullmatch(namespace):
        raise OpenLineageSettingError(
            f"the OpenLineage namespace must be 1 to {MAX_NAMESPACE_LENGTH} letters, digits and "
            f"._:/@- starting with a letter or digit, e.g. {DEFAULT_NAMESPACE} or "
            f"k8s://prod-eu-1, not {namespace!r}"
        )
    return namespace
