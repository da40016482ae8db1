"""Benchmarks of dataproduct-operator against a local control plane (``make bench``)."""
