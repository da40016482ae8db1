"""``dpo access``: its arguments, the documents it builds, what it prints and how it explains
the API server's refusals (no cluster: see tests/integration/test_access_cli.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from dataproduct_operator.accesscli.commands import Caller, _explained
from dataproduct_operator.accesscli.documents import (
    DecisionInput,
    ObjectRef,
    RequestInput,
    approvals_answering,
    build_decision,
    build_request,
    find_pending,
    object_name,
    parse_ref,
    parse_subject,
    request_namespace,
)
from dataproduct_operator.accesscli.printing import (
    history_text,
    pending_table,
    requests_table,
    shortened,
    to_yaml,
)
from dataproduct_operator.api.accessdecision import DataAccessDecision, Verdict
from dataproduct_operator.api.accessrequest import DataAccessRequest, DataAccessRequestSpec
from dataproduct_operator.api.base import DNS_LABEL
from dataproduct_operator.api.dataproduct import DataProduct, ReaderKind
from dataproduct_operator.cli import main
from dataproduct_operator.errors import UserError
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.rest import ApiError
from tests.helpers import example_product

ORDERS = ObjectRef("sales", "orders")
REPORTING = "serviceaccount:marketing/reporting"


def _request_input(**changes: Any) -> RequestInput:
    values: dict[str, Any] = {
        "product": ORDERS,
        "subject": parse_subject(REPORTING),
        "purpose": "Monthly revenue reporting",
        "ports": ("daily",),
        "duration": "30d",
    }
    return RequestInput(**(values | changes))


def _built(**changes: Any) -> dict[str, Any]:
    return build_request(
        _request_input(**changes), namespace="marketing", name="ask", requested_by="dana"
    )


# References and subjects


def test_a_reference_is_namespace_slash_name() -> None:
    assert parse_ref("sales/orders", "a data product") == ORDERS
    assert str(ORDERS) == "sales/orders"


@pytest.mark.parametrize("text", ["orders", "sales/", "/orders", "Sales/orders", "a/b/c"])
def test_a_malformed_reference_says_the_form(text: str) -> None:
    with pytest.raises(
        UserError,
        match="is not NAMESPACE/NAME of a data product: write both as lowercase DNS labels",
    ):
        parse_ref(text, "a data product")


def test_the_three_subject_forms() -> None:
    account = parse_subject(REPORTING)
    assert (account.kind, account.namespace, account.name) == (
        ReaderKind.SERVICE_ACCOUNT, "marketing", "reporting",
    )  # fmt: skip
    group = parse_subject("group:analysts")
    assert (group.kind, group.namespace, group.name) == (ReaderKind.GROUP, None, "analysts")
    user = parse_subject("User:dana@example.com")
    assert (user.kind, user.name) == (ReaderKind.USER, "dana@example.com")


@pytest.mark.parametrize(
    "text", ["reporting", "sa:marketing/reporting", "group:", "serviceaccount:reporting", "x:y"]
)
def test_a_bad_subject_names_the_forms_allowed(text: str) -> None:
    with pytest.raises(UserError, match="serviceaccount:NAMESPACE/NAME, group:NAME or user:NAME"):
        parse_subject(text)


def test_a_system_group_subject_is_refused_with_the_apis_reason() -> None:
    with pytest.raises(UserError, match="names starting with system: are reserved by Kubernetes"):
        parse_subject("group:system:authenticated")


def test_a_service_accounts_request_lives_in_its_namespace() -> None:
    account = parse_subject(REPORTING)
    assert request_namespace(account, None) == "marketing"
    assert request_namespace(account, "marketing") == "marketing"
    with pytest.raises(UserError, match="lives in that ServiceAccount's namespace marketing"):
        request_namespace(account, "finance")


def test_a_group_request_needs_a_namespace() -> None:
    group = parse_subject("group:analysts")
    assert request_namespace(group, "finance") == "finance"
    with pytest.raises(UserError, match="give -n/--namespace"):
        request_namespace(group, None)


@pytest.mark.parametrize(
    "parts",
    [
        ("orders", "reporting"),
        ("o" * 63, "dana@example.com"),
        ("orders", "--Weird__Name--"),
        ("---", "@@@"),
    ],
)
def test_a_generated_name_is_a_dns_label_of_at_most_63(parts: tuple[str, str]) -> None:
    name = object_name(parts, "x7k2p")
    assert len(name) <= 63
    assert re.fullmatch(DNS_LABEL, name), name
    assert name.endswith("-x7k2p") or name == "x7k2p"


def test_a_generated_name_reads_as_product_and_subject() -> None:
    assert object_name(("orders", "dana@example.com"), "x7k2p") == "orders-dana-example-com-x7k2p"


# Documents


def test_a_request_document_is_what_the_crd_accepts() -> None:
    document = _built()
    assert document == {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataAccessRequest",
        "metadata": {"name": "ask", "namespace": "marketing"},
        "spec": {
            "product": {"namespace": "sales", "name": "orders"},
            "ports": ["daily"],
            "subject": {"kind": "ServiceAccount", "name": "reporting", "namespace": "marketing"},
            "purpose": "Monthly revenue reporting",
            "duration": "30d",
            "requestedBy": "dana",
        },
    }
    DataAccessRequestSpec.model_validate(document["spec"])


def test_a_request_without_ports_or_duration_leaves_them_out() -> None:
    spec = _built(ports=(), duration=None, renews="ask-before")["spec"]
    assert "ports" not in spec and "duration" not in spec
    assert spec["renews"] == {"name": "ask-before"}


def test_a_repeated_port_is_asked_once() -> None:
    assert _built(ports=("daily", "daily", "raw"))["spec"]["ports"] == ["daily", "raw"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"purpose": "  "}, "--purpose must say something"),
        ({"purpose": "x" * 1025}, "--purpose is 1025 characters long: shorten it to 1024"),
        ({"duration": "2y"}, "--duration: '2y' is not a duration"),
        ({"duration": "30s"}, "--duration: '30s' is not a duration"),
        ({"duration": "367d"}, "--duration: the duration must be at most 366d"),
        ({"ports": ("Daily Orders",)}, "--port 'Daily Orders' is not a port name"),
        ({"ports": tuple(f"p{i}" for i in range(33))}, "a request names at most 32 ports"),
        ({"renews": "Old_One"}, "--renews 'Old_One' is not a valid name"),
    ],
    ids=["blank-purpose", "long-purpose", "years", "seconds", "above-a-year", "bad-port",
         "many-ports", "bad-renews"],
)  # fmt: skip
def test_a_request_out_of_bounds_says_which_flag_to_change(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError) as raised:
        _built(**changes)
    assert message in str(raised.value)


def test_a_bad_name_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(UserError, match="--name 'Ask Me' is not a valid name"):
        build_request(_request_input(), namespace="marketing", name="Ask Me", requested_by="d")


def test_a_decision_names_the_request_and_its_uid() -> None:
    decision = DecisionInput(ObjectRef("marketing", "ask"), Verdict.APPROVE, "Fine", "7d")
    document = build_decision(decision, uid="u-1", namespace="sales", name="yes", decided_by="pat")
    assert document == {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataAccessDecision",
        "metadata": {"name": "yes", "namespace": "sales"},
        "spec": {
            "request": {"namespace": "marketing", "name": "ask", "uid": "u-1"},
            "decision": "Approve",
            "note": "Fine",
            "decidedBy": "pat",
            "duration": "7d",
        },
    }


def test_a_denial_has_no_duration_and_its_note_is_bounded() -> None:
    deny = DecisionInput(ObjectRef("marketing", "ask"), Verdict.DENY, duration="7d")
    with pytest.raises(UserError, match="--duration is for approve only"):
        build_decision(deny, uid="u", namespace="sales", name="no", decided_by="pat")
    long_note = DecisionInput(ObjectRef("marketing", "ask"), Verdict.DENY, note="n" * 1025)
    with pytest.raises(UserError, match="--note is 1025 characters long: shorten it to 1024"):
        build_decision(long_note, uid="u", namespace="sales", name="no", decided_by="pat")
    plain = DecisionInput(ObjectRef("marketing", "ask"), Verdict.DENY)
    spec = build_decision(plain, uid="u", namespace="sales", name="no", decided_by="pat")["spec"]
    assert "note" not in spec and "duration" not in spec


# What a command finds


def _product(pending: list[dict[str, Any]] | None = None, **access: Any) -> DataProduct:
    status = {"access": {"pending": pending or [], **access}}
    return DataProduct.from_object(
        {
            "metadata": {"name": "orders", "namespace": "sales"},
            "spec": example_product()["spec"],
            "status": status,
        }
    )


PENDING = {
    "request": "marketing/ask",
    "uid": "u-1",
    "kind": "ServiceAccount",
    "name": "reporting",
    "namespace": "marketing",
    "ports": ["daily"],
    "purpose": "Monthly revenue reporting",
    "requestedBy": "dana",
    "duration": "30d",
}


def test_an_owner_finds_a_request_in_the_products_pending_list() -> None:
    other = PENDING | {"request": "finance/ask", "uid": "u-2"}
    found = find_pending([_product([other]), _product([PENDING])], ObjectRef("marketing", "ask"))
    assert found is not None
    assert found[1].uid == "u-1"
    assert find_pending([_product([other])], ObjectRef("marketing", "ask")) is None


def _decision(name: str, verdict: str, uid: str, request: str = "ask") -> DataAccessDecision:
    return DataAccessDecision.from_object(
        {
            "metadata": {"name": name, "namespace": "sales", "uid": f"d-{name}"},
            "spec": {
                "request": {"namespace": "marketing", "name": request, "uid": uid},
                "decision": verdict,
                "decidedBy": "pat",
            },
        }
    )


def test_revoking_finds_only_the_approvals_of_that_request() -> None:
    decisions = [
        _decision("yes", "Approve", "u-1"),
        _decision("no", "Deny", "u-1"),
        _decision("older", "Approve", "u-0"),  # an earlier request of the same name
        _decision("other", "Approve", "u-9", request="another"),
    ]
    ask = ObjectRef("marketing", "ask")
    assert [d.name for d in approvals_answering(decisions, ask, "u-1")] == ["yes"]
    assert [d.name for d in approvals_answering(decisions, ask, None)] == ["yes", "older"]


# Printing


def _access_request(name: str, **status: Any) -> DataAccessRequest:
    return DataAccessRequest.from_object(
        {
            "metadata": {"name": name, "namespace": "marketing"},
            "spec": _built()["spec"] | {"purpose": "Monthly revenue reporting\nfor finance, "
                                                   "and the board's quarterly review"},
            "status": status,
        }
    )  # fmt: skip


def test_the_requests_table_has_one_row_per_request() -> None:
    table = requests_table(
        [
            _access_request("ask"),
            _access_request("again", phase="Active", expiresAt="2026-12-30T08:00:00Z"),
        ]
    )
    header, first, second = table.splitlines()
    assert header.split() == [
        "NAMESPACE", "NAME", "PRODUCT", "SUBJECT", "PORTS", "PHASE", "EXPIRES", "PURPOSE",
    ]  # fmt: skip
    assert first.split()[:7] == [
        "marketing", "ask", "sales/orders", "serviceaccount:marketing/reporting", "daily",
        "Pending", "-",
    ]  # fmt: skip
    assert second.split()[5:7] == ["Active", "2026-12-30T08:00:00Z"]
    # Columns line up under their headers; the purpose is one line, shortened.
    for column in ("PORTS", "EXPIRES", "PURPOSE"):
        assert first[header.index(column) - 2 : header.index(column)] == "  "
    assert first.endswith("Monthly revenue reporting for finance,…")
    assert second[header.index("EXPIRES") :].startswith("2026-12-30T08:00:00Z")


def test_an_empty_list_says_so() -> None:
    assert requests_table([]) == "No access requests found"
    assert pending_table([]) == "No access requests are waiting for your decision"


def test_a_long_text_is_shortened_to_one_line() -> None:
    assert shortened("a\n b", 10) == "a b"
    assert shortened("abcdefghijk", 5) == "abcd…"
    assert shortened(None, 5) == "-"


def test_the_pending_table_shows_who_asks_for_what_and_why() -> None:
    product = _product([PENDING])
    lines = pending_table([(product, product.status.access.pending[0])]).splitlines()  # type: ignore[union-attr]
    assert lines[0].split() == [
        "PRODUCT", "REQUEST", "SUBJECT", "PORTS", "DURATION", "REQUESTED-BY", "PURPOSE",
    ]  # fmt: skip
    assert lines[1].split() == [
        "sales/orders", "marketing/ask", "serviceaccount:marketing/reporting", "daily", "30d",
        "dana", "Monthly", "revenue", "reporting",
    ]  # fmt: skip


def test_the_history_shows_readers_then_the_audit_trail() -> None:
    product = _product(
        readers=[
            {"kind": "Group", "name": "analysts", "source": "Spec"},
            {
                "kind": "ServiceAccount", "name": "reporting", "namespace": "marketing",
                "ports": ["daily"], "source": "Request", "request": "marketing/ask",
                "purpose": "Monthly revenue reporting", "expiresAt": "2026-12-30T08:00:00Z",
            },
        ],
        history=[
            {"request": "marketing/ask", "subject": "serviceaccount:marketing/reporting",
             "phase": "Pending", "at": "2026-11-30T08:00:00Z", "by": "dana"},
            {"request": "marketing/ask", "subject": "serviceaccount:marketing/reporting",
             "phase": "Approved", "at": "2026-11-30T09:00:00Z", "by": "pat",
             "note": "Fine for reporting"},
        ],
    )  # fmt: skip
    lines = history_text(product).splitlines()
    assert lines[0] == "Readers of sales/orders:"
    assert lines[1].split() == ["SUBJECT", "SOURCE", "PORTS", "REQUEST", "EXPIRES", "PURPOSE"]
    assert lines[2].split() == ["group:analysts", "Spec", "*", "-", "-", "-"]
    assert lines[3].split()[:5] == [
        "serviceaccount:marketing/reporting", "Request", "daily", "marketing/ask",
        "2026-12-30T08:00:00Z",
    ]  # fmt: skip
    assert lines[5] == "Access requests of sales/orders, oldest first:"
    assert lines[6].split() == ["TIME", "REQUEST", "SUBJECT", "PHASE", "BY", "NOTE"]
    assert lines[7].split() == [
        "2026-11-30T08:00:00Z", "marketing/ask", "serviceaccount:marketing/reporting",
        "Pending", "dana", "-",
    ]  # fmt: skip
    assert lines[8].split()[3:] == ["Approved", "pat", "Fine", "for", "reporting"]


def test_a_product_without_access_status_has_an_empty_history() -> None:
    text = history_text(_product())
    assert "Readers of sales/orders:\n  none" in text
    assert text.endswith("oldest first:\n  none yet")


def test_yaml_output_is_one_applicable_document() -> None:
    document = _built()
    text = to_yaml(document)
    assert text.startswith("---\n")
    assert yaml.safe_load(text) == document


# Identity and refusals


def test_impersonation_sends_kubectls_headers() -> None:
    caller = Caller(user="dana", groups=("marketing-team", "analysts"))
    assert caller.headers() == (
        ("Impersonate-User", "dana"),
        ("Impersonate-Group", "marketing-team"),
        ("Impersonate-Group", "analysts"),
    )
    assert Caller().headers() == ()
    with pytest.raises(UserError, match="--as-group needs --as"):
        Caller(groups=("analysts",)).headers()


def test_a_forbidden_decision_says_who_may_decide() -> None:
    forbidden = ApiError(403, "Forbidden", "dataaccessdecisions.datamesh.dev is forbidden: ...")
    message = str(_explained(forbidden, "create", "dataaccessdecisions", "namespace sales"))
    assert message.startswith(
        "You may not create dataaccessdecisions in namespace sales: only the owning domain's "
        "team may answer requests for its products (the API server said: "
    )


def test_a_refused_impersonation_is_told_as_such() -> None:
    refused = ApiError(403, "Forbidden", 'users "dana" is forbidden: cannot impersonate')
    message = str(_explained(refused, "list", "dataaccessrequests", "namespace marketing"))
    assert message.startswith("You may not act as another user (--as, --as-group)")


def test_a_name_taken_asks_for_another_name() -> None:
    taken = ApiError(409, "AlreadyExists", 'dataaccessrequests "ask" already exists')
    message = str(_explained(taken, "create", "dataaccessrequests", "namespace marketing"))
    assert message == 'dataaccessrequests "ask" already exists: choose another --name'


# The command line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "--mine", "--pending"], "Give either --mine or --pending, not both"),
        (["list", "-n", "x", "-A"], "Give either --namespace or --all-namespaces, not both"),
        (["request", "sales/orders", "--for", "nobody", "--purpose", "p"],
         "--for 'nobody' is not a subject"),
        (["request", "orders", "--for", "group:a", "--purpose", "p"],
         "'orders' is not NAMESPACE/NAME of a data product"),
        (["approve", "ask"], "'ask' is not NAMESPACE/NAME of an access request"),
        (["history", "sales"], "'sales' is not NAMESPACE/NAME of a data product"),
        (["request", "sales/orders", "--for", "group:a", "--purpose", "p", "-o", "json"],
         "Invalid value for '--output' / '-o'"),
    ],
)  # fmt: skip
def test_the_command_line_refuses_bad_arguments_before_calling_anyone(
    args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["access", *args])
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert "Traceback" not in result.output


def test_every_writing_command_offers_yaml_output() -> None:
    for command in ("request", "approve", "deny", "revoke", "withdraw"):
        result = CliRunner().invoke(main, ["access", command, "--help"])
        assert result.exit_code == 0
        assert "-o, --output [yaml]" in result.output, command
        assert "--as TEXT" in result.output and "--as-group TEXT" in result.output


def _kubeconfig(path: Path, context: dict[str, str]) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1",
                                                "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "here", "context": {"cluster": "c", "user": "u", **context}}],
        "current-context": "here",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(document))
    return path


def test_the_kubeconfig_contexts_namespace_is_the_default(tmp_path: Path) -> None:
    named = _kubeconfig(tmp_path / "named", {"namespace": "marketing"})
    assert Credentials.from_kubeconfig(named).namespace == "marketing"
    unnamed = _kubeconfig(tmp_path / "unnamed", {})
    assert Credentials.from_kubeconfig(unnamed).namespace is None
