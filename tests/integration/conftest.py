"""The integration tier: its fixtures (the control plane, the chart, namespaces, identities)
are shared with the fault tier in ``tests/conftest.py``; helpers are in ``tests/clusters.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.meshpolicies import POLICIES, MakePolicy, mesh_policy
from tests.products import delete_if_present
from tests.stores import STORES, register_store


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory needs the control plane."""
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def store(kube: BlockingClient, crds: None, postgres: LocalPostgres) -> Iterator[str]:
    """The local PostgreSQL registered as a DataStore for the module's tests (see
    :func:`tests.stores.register_store`); its name."""
    name = register_store(kube, postgres)
    yield name
    delete_if_present(kube, f"{STORES}/{name}")


@pytest.fixture
def make_policy(kube: BlockingClient, domain: str) -> Iterator[MakePolicy]:
    """``make_policy(name, rules, enforcement, **match)``: a MeshPolicy for the test's domain
    only, deleted afterwards."""
    made: list[str] = []

    def make(
        name: str, rules: list[dict[str, str]], enforcement: str, **match: list[str]
    ) -> dict[str, Any]:
        made.append(name)
        policy = mesh_policy(name, rules, enforcement, **{**match, "domains": [domain]})
        return cast(dict[str, Any], kube.create(POLICIES, policy))

    yield make
    for path in [f"{POLICIES}/{name}" for name in made]:
        delete_if_present(kube, path)
