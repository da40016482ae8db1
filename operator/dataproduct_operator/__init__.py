"""dataproduct-operator: Data Mesh data products as a Kubernetes API.

The package is organised in layers (see README.md): a pure core (``api``, ``specs``,
``status``), an imperative shell (``reconcile``, ``handlers``), the only package that talks to
the API server (``k8s``) and the local control plane used by ``dpo dev`` and the tests
(``cluster``).
"""

__version__ = "0.1.0"
