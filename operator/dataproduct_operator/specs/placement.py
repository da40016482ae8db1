"""Where pipeline pods run, and with which runner: the operator's ``--pipeline-node-selector``,
``--pipeline-toleration`` and ``--runner-image`` (layer ``specs``, pure).

A platform often keeps data work on a node pool of its own, tainted so that nothing else lands
there; the operator then gives every pipeline pod (scheduled runs and on-demand runs alike) the
pool's node selector and the toleration of its taint. The local cluster's real node is such a
pool: labelled and tainted ``datamesh.dev/node-type=real``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator import __version__
from dataproduct_operator.api.base import LABEL_KEY, LABEL_VALUE
from dataproduct_operator.api.dataproduct import IMAGE_MESSAGE, IMAGE_REFERENCE
from dataproduct_operator.constants import RUNNER_REPOSITORY

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_KEY = re.compile(LABEL_KEY)
_VALUE = re.compile(LABEL_VALUE)


@dataclass(frozen=True)
class Toleration:
    key: str
    effect: str | None = None  # None: every effect
    value: str | None = None  # None: operator Exists

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"key": self.key}
        if self.value is None:
            wire["operator"] = "Exists"
        else:
            wire["operator"] = "Equal"
            wire["value"] = self.value
        if self.effect is not None:
            wire["effect"] = self.effect
        return wire


@dataclass(frozen=True)
class PodPlacement:
    """The node selector and tolerations of every pipeline pod (none: anywhere), and the image
    sql pipelines run (the built-in runner's; empty: the project's own of this version)."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    runner_image: str = ""

    @property
    def runner(self) -> str:
        return self.runner_image or f"{RUNNER_REPOSITORY}:{__version__}"


def _checked_key(key: str, what: str) -> str:
    if len(key) > 253 or not _KEY.match(key):
        raise ValueError(f"{what} {key!r}: the key must be a label key such as node-pool or "
                         "example.com/node-pool")  # fmt: skip
    return key


def _checked_value(value: str, what: str) -> str:
    if not _VALUE.match(value):
        raise ValueError(f"{what} value {value!r}: at most 63 letters, digits, '-', '_' or '.', "
                         "beginning and ending with a letter or digit")  # fmt: skip
    return value


def parse_node_selector(items: tuple[str, ...]) -> dict[str, str]:
    """``("node-pool=data", ...)`` -> the selector; ValueError saying what to write instead."""
    selector: dict[str, str] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"node selector {item!r}: write KEY=VALUE, e.g. node-pool=data")
        selector[_checked_key(key, "node selector")] = _checked_value(value, "node selector")
    return selector


def parse_toleration(item: str) -> Toleration:
    """``KEY[=VALUE][:EFFECT]`` -> a toleration (no VALUE: any value; no EFFECT: any effect);
    ValueError saying what to write instead."""
    rest, colon, effect = item.rpartition(":")
    if not colon:
        rest, effect = item, ""
    if colon and effect not in EFFECTS:
        raise ValueError(f"toleration {item!r}: the effect after ':' is one of "
                         f"{', '.join(EFFECTS)}")  # fmt: skip
    key, equals, value = rest.partition("=")
    return Toleration(
        key=_checked_key(key, "toleration"),
        effect=effect or None,
        value=_checked_value(value, "toleration") if equals else None,
    )


def pod_placement(
    node_selector: tuple[str, ...], tolerations: tuple[str, ...], runner_image: str = ""
) -> PodPlacement:
    if runner_image and not re.fullmatch(IMAGE_REFERENCE[1:-1], runner_image):
        raise ValueError(f"runner image {runner_image!r}: {IMAGE_MESSAGE}")
    return PodPlacement(
        parse_node_selector(node_selector),
        tuple(parse_toleration(t) for t in tolerations),
        runner_image,
    )
