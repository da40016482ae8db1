"""Names of a DataProduct's children (layer ``api``, pure).

They are part of the contract: consumers mount ``<product>-<port>`` claims and read the
``<product>-connection`` ConfigMap, so builders and status share these functions.
"""

from __future__ import annotations

import re

DATA_MOUNT_ROOT = "/data"


def claim_name(product_name: str, port_name: str) -> str:
    return f"{product_name}-{port_name}"


def service_account_name(product_name: str) -> str:
    return product_name


def connection_config_map_name(product_name: str) -> str:
    return f"{product_name}-connection"


def reader_role_name(product_name: str) -> str:
    return f"{product_name}-reader"


def owner_role_name(product_name: str) -> str:
    return f"{product_name}-owner"


def cronjob_name(product_name: str, pipeline_name: str) -> str:
    return f"{product_name}-{pipeline_name}"


def run_job_name(product_name: str, pipeline_name: str, run_id: str) -> str:
    return f"{product_name}-{pipeline_name}-{run_id}"


def prometheus_rule_name(product_name: str) -> str:
    return product_name


def port_mount_path(port_name: str) -> str:
    return f"{DATA_MOUNT_ROOT}/{port_name}"


def port_path_variable(port_name: str) -> str:
    """The environment variable that tells a pipeline where a port's volume is mounted."""
    return "OUTPUT_PORT_" + re.sub(r"[^A-Za-z0-9]", "_", port_name).upper() + "_PATH"
