"""Talking to the Kubernetes API server: layer ``k8s``, the only one that does.

:mod:`.client` is the one client (asynchronous, aiohttp), :mod:`.blocking` its blocking facade
for bootstrapping the local control plane, the CLI and the tests; :mod:`.credentials` gets who
to be from the ``kubernetes`` package's loader (kubeconfigs, exec plugins, in-cluster) and keeps
it current; :mod:`.rest` holds the REST conventions and :class:`~.rest.ApiError`;
:mod:`.kubeconfig` writes kubeconfigs; :mod:`.informer` keeps watch-fed caches.
"""
