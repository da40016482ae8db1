"""The chart README's list of the RBAC it grants (layer ``manifests``, pure).

Generated from the same :class:`~dataproduct_operator.manifests.rbac.Rule` tuples, with their
reasons, as the chart's roles, and from the guards' descriptions, so the README cannot drift from
what the chart installs (``make verify``).
"""

from __future__ import annotations

from dataproduct_operator.constants import (
    DEFAULT_ADMISSION_SLOTS,
    DOMAIN_EDITOR_ROLE,
    NAMESPACE_WRITER_BINDING,
    NAMESPACE_WRITER_ROLE,
    PROTECTED_NAMESPACES,
    admission_slot_names,
)
from dataproduct_operator.manifests.guards import build_guard_policies
from dataproduct_operator.manifests.rbac import (
    CATALOG_RULES,
    DOMAIN_EDITOR_RULES,
    NAMESPACE_WRITER_RULES,
    OPERATOR_RULES,
    VIEW_RULES,
    Rule,
    own_namespace_rules,
)

# (role, how it is bound, its rules)
ROLES: tuple[tuple[str, str, tuple[Rule, ...]], ...] = (
    (
        "ClusterRole `<release>`",
        "bound cluster-wide to the operator's ServiceAccount: reads everywhere, writes only "
        "what must be written cluster-wide",
        OPERATOR_RULES,
    ),
    (
        f"ClusterRole `{NAMESPACE_WRITER_ROLE}`",
        "never bound cluster-wide: the operator binds it to itself (RoleBinding "
        f"`{NAMESPACE_WRITER_BINDING}`) in each namespace a DataDomain holds, when it onboards "
        "the domain; admission refuses the binding anywhere else",
        NAMESPACE_WRITER_RULES,
    ),
    (
        "Role `<release>-leader-election`",
        "in the release's namespace, bound to the operator's ServiceAccount",
        own_namespace_rules("<release>"),
    ),
    (
        "ClusterRole `<release>-catalog`",
        "bound cluster-wide to the standalone catalog's ServiceAccount (with `catalog.standalone`)",
        CATALOG_RULES,
    ),
    (
        f"ClusterRole `{DOMAIN_EDITOR_ROLE}-rules`",
        f"aggregated into `{DOMAIN_EDITOR_ROLE}` (with the built-in `view`), which the operator "
        "binds to each domain's owner team in the domain's namespace",
        DOMAIN_EDITOR_RULES,
    ),
    (
        "ClusterRole `datamesh-view`",
        "aggregated into the built-in `view` (and so `edit` and `admin`)",
        VIEW_RULES,
    ),
)


def _code(items: tuple[str, ...]) -> str:
    return ", ".join(f"`{item or 'core'}`" for item in items)


def _names(rule: Rule) -> str:
    if rule.resource_names == admission_slot_names(DEFAULT_ADMISSION_SLOTS):
        first, last = rule.resource_names[0], rule.resource_names[-1]
        return f"`{first}` … `{last}` (`policies.maxEnforced` names)"
    return _code(rule.resource_names) if rule.resource_names else "any"


def render_rbac_section() -> str:
    """The ``## RBAC`` section of the chart's README (without a trailing blank line)."""
    lines = [
        "## RBAC",
        "",
        "What the chart grants (behind `rbac.create`), generated from "
        "`operator/dataproduct_operator/manifests/rbac.py`: every verb named, no wildcards, no "
        "`escalate` or `impersonate`. The operator holds write powers only in the namespaces of "
        "DataDomains: it learns its own username with a SelfSubjectReview and binds itself there.",
    ]
    for role, bound, rules in ROLES:
        lines += ["", f"### {role}", "", f"{bound[0].upper()}{bound[1:]}.", ""]
        lines += ["| API group | resources | verbs | names | why |", "|---|---|---|---|---|"]
        lines += [
            f"| {_code((rule.api_group,))} | {_code(rule.resources)} | {_code(rule.verbs)} | "
            f"{_names(rule)} | {rule.reason} |"
            for rule in rules
        ]
    protected = ", ".join(f"`{name}`" for name in PROTECTED_NAMESPACES)
    lines += [
        "",
        "### Admission policies",
        "",
        "ValidatingAdmissionPolicies with `failurePolicy: Fail`, each bound with `Deny`. All but "
        "the last match only requests of the operator's ServiceAccount. Protected namespaces: "
        f"{protected}, the release's namespace and the value `protectedNamespaces`.",
        "",
        "| policy | what it refuses |",
        "|---|---|",
    ]
    for document in build_guard_policies("", "[]", "[]"):
        if document["kind"] == "ValidatingAdmissionPolicy":
            metadata = document["metadata"]
            description = next(iter(metadata["annotations"].values()))
            lines.append(f"| `{metadata['name']}` | {description} |")
    lines += [
        "",
        "### Admission policies of MeshPolicies",
        "",
        "The API server applies no policy created through the API to admission policies "
        "themselves, so the guards above cannot protect each other; RBAC does. The operator may "
        "write ValidatingAdmissionPolicies and their bindings by name only: a pool of "
        "`policies.maxEnforced` names (`datamesh-policy-000` and on), one for each MeshPolicy "
        "enforced at admission. It cannot delete or change the guards or any other admission "
        "policy (it may list and watch them all), and it creates with server-side apply, which "
        "names the object (a create that names none is refused). One more enforced MeshPolicy "
        "than the pool holds is `Ready=False`, reason `NoAdmissionSlot`, until one is deleted "
        "or set to Audit.",
        "",
        "### Accepted risk",
        "",
        "Whoever holds the operator's token can still write admission policies in the pool's "
        "names: add one that refuses whatever requests it matches (a denial of service, though "
        "it grants nobody anything), or delete the ones enforcing MeshPolicies (the operator "
        "puts them back at its next drift pass). Keep the operator's token as safe as any write "
        "access to the mesh, and set `policies.maxEnforced` to what you use.",
        "",
        "The operator may create namespaces (a DataDomain's, when missing) and label them with "
        "their domain, so whoever holds its token can create new namespaces labelled as domains, "
        "bind the writer role there and write Jobs and ConfigMaps in them: new, empty namespaces "
        "of its own, never an existing one. The guard `datamesh-operator-namespaces` refuses "
        "the operator adding the domain label to a namespace that exists without it: an existing "
        "namespace joins the mesh only when a platform admin labels it (`kubectl label "
        "namespace sales datamesh.dev/domain=sales`).",
    ]
    return "\n".join(lines)
