"""Names of a DataProduct's children (layer ``api``, pure).

They are part of the contract: consumers mount ``<product>-<port>`` claims and read the
``<product>-connection`` ConfigMap, so builders and status share these functions.
"""

from __future__ import annotations

import hashlib
import re

DATA_MOUNT_ROOT = "/data"
# Where a sql pipeline's pod mounts (read-only) the claims its file inputs are on.
SOURCE_MOUNT_ROOT = "/sources"


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


def source_mount_path(claim: str) -> str:
    """Where a claim holding file inputs is mounted: one directory per claim."""
    return f"{SOURCE_MOUNT_ROOT}/{claim}"


def source_volume_name(claim: str) -> str:
    """The pod's volume of a claim holding file inputs: a DNS label, whatever the claim's name
    (a DNS subdomain of up to 253 characters)."""
    return "source-" + hashlib.sha256(claim.encode()).hexdigest()[:12]


def port_path_variable(port_name: str) -> str:
    """The environment variable that tells a pipeline where a port's volume is mounted."""
    return "OUTPUT_PORT_" + re.sub(r"[^A-Za-z0-9]", "_", port_name).upper() + "_PATH"


def _variable_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def output_table_variable(port_name: str) -> str:
    """The environment variable that names a store port's table (``schema.table``)."""
    return f"OUTPUT_{_variable_part(port_name)}_TABLE"


def input_variable_prefix(input_name: str) -> str:
    """The prefix of an input's variables: ``INPUT_<NAME>_TABLE`` and the reader's ``PG*``."""
    return f"INPUT_{_variable_part(input_name)}_"


def writer_secret_name(product_name: str) -> str:
    """The Secret with the product's writer login for its store, in its namespace."""
    return f"{product_name}-store"


MAX_SECRET_NAME = 253


def reader_secret_name(store: str, service_account: str) -> str:
    """The Secret with a ServiceAccount's reader login for ``store``, in the ServiceAccount's
    namespace: ``dm-store-<store>-<serviceaccount>``, shortened with a hash past 253."""
    name = f"dm-store-{store}-{service_account}"
    if len(name) <= MAX_SECRET_NAME:
        return name
    digest = hashlib.sha256(f"{store}/{service_account}".encode()).hexdigest()[:10]
    return f"{name[: MAX_SECRET_NAME - 11].rstrip('-.')}-{digest}"


# The environment variable holding a sql pipeline's run spec (JSON), which the runner reads.
RUN_SPEC_VARIABLE = "DPO_RUN_SPEC"
