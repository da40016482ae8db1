"""Local Kubernetes control plane: layer ``cluster`` (imperative, process management).

Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kubectl and helm
from their Go modules (:mod:`.toolchain`), then runs them as local processes on 127.0.0.1
(:mod:`.controlplane`) for ``dpo cluster``, ``dpo dev`` and the integration tests.
"""
