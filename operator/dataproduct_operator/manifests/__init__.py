"""Layer ``manifests`` (pure): generated files derived from the package.

CRDs from the ``api`` models, the operator's RBAC rules and the chart's values schema;
``make generate`` writes them and ``make verify`` fails when a committed copy drifts.
"""
