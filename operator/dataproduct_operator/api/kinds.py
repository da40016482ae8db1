"""The API's group, version and kinds, and the finalizers the operator sets (layer ``api``,
pure).

The one place these names are spelled: the models, the manifests, the runtime, the catalog and
the tests refer to them.
"""

from __future__ import annotations

GROUP = "datamesh.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DATA_PRODUCT = "DataProduct"
DATA_DOMAIN = "DataDomain"
MESH_POLICY = "MeshPolicy"
DATA_STORE = "DataStore"
DATA_ACCESS_REQUEST = "DataAccessRequest"
DATA_ACCESS_DECISION = "DataAccessDecision"

# A deleted DataDomain stays until its namespace holds no DataProduct.
DOMAIN_FINALIZER = f"{GROUP}/domain-protection"
# Earlier versions held every product with this finalizer; it is removed when such a product
# is deleted. Nothing adds it any more: the garbage collector deletes the children.
LEGACY_FINALIZER = f"{GROUP}/cleanup"

# (apiVersion, kind): how the API server and the k8s package's table of kinds name them.
DATA_PRODUCT_KIND = (API_VERSION, DATA_PRODUCT)
DATA_DOMAIN_KIND = (API_VERSION, DATA_DOMAIN)
MESH_POLICY_KIND = (API_VERSION, MESH_POLICY)
DATA_STORE_KIND = (API_VERSION, DATA_STORE)
DATA_ACCESS_REQUEST_KIND = (API_VERSION, DATA_ACCESS_REQUEST)
DATA_ACCESS_DECISION_KIND = (API_VERSION, DATA_ACCESS_DECISION)
