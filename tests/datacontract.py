"""datacontract-cli for the tests: the Data Contract CLI, a tool this project did not write, run
from its own virtualenv (`make datacontract`, from requirements/datacontract.lock), and a
DataProduct with a store port whose status records its table, for the exports it reads."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct
from tests.helpers import REPO, example_product

# DATACONTRACT_VENV as in the Makefile: another place for the virtualenv.
DATACONTRACT = (
    Path(os.environ.get("DATACONTRACT_VENV", REPO / ".venv-datacontract"))
    / "bin"
    / ("datacontract")
)

STORE = "local-postgres"
ENDPOINT = {
    "store": STORE,
    "host": "postgres.datamesh-system.svc",
    "port": 5432,
    "database": "mesh",
    "schema": "sales__orders",
    "table": "orders_v1",
}


def run_datacontract(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``datacontract ARGS``; fails, saying how to get it, when the virtualenv is missing."""
    assert DATACONTRACT.is_file(), f"{DATACONTRACT} is missing: run `make datacontract`"
    return subprocess.run(
        [str(DATACONTRACT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})},
    )


def store_port_document(endpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The example sales/orders with its orders-v1 port in the store ``local-postgres``, its
    status recording the table (``endpoint``) and the finance reader's grant, and its
    daily-revenue port on a volume, as CSV files."""
    document = example_product()
    ports = document["spec"]["outputPorts"]
    ports[0].pop("storage", None)
    ports[0]["store"] = {"name": STORE}
    ports[1].update(format="csv", storage={"size": "1Gi"})
    document["status"] = {
        "outputPorts": [
            {
                "name": "orders-v1",
                "phase": "Placed",
                "endpoint": dict(endpoint or ENDPOINT),
                "grants": [
                    {
                        "kind": "ServiceAccount",
                        "name": "revenue",
                        "namespace": "finance",
                        "role": "dm_sa_finance__revenue",
                    }
                ],
            },
            {"name": "daily-revenue", "claimName": "orders-daily-revenue", "phase": "Bound"},
        ]
    }
    return document


def store_port_product() -> DataProduct:
    return DataProduct.from_object(store_port_document())
