"""Talking to the Kubernetes API server: layer ``k8s``, the only one that does.

:mod:`.kubeconfig` reads and writes kubeconfig files; :mod:`.rest` is a small synchronous JSON
client used to bootstrap the local control plane and by the tests.
"""
