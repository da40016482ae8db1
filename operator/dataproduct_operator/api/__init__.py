"""Layer ``api`` (pure): the pydantic models that are the CRD schemas, the single source of truth.

Imports nothing from the other layers.
"""
