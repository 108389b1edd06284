"""The governance kind checks a document once, with the deployment's guardrails."""

from __future__ import annotations

import dataclasses

from lakegov.governance.documents import governance_kind
from lakegov.governance.guardrails import Guardrails
from lakegov.metadata.kinds import DeploymentRules
from lakegov.settings import Settings

ROLE = "arn:aws:iam::123456789012:role/analyst"
DOCUMENT = [
    {
        "role_arn": ROLE,
        "access_type": "GRANT",
        "named_data_catalog": [{"Database": "hr_raw", "Table": "people"}],
        "table_permissions": ["SELECT"],
    }
]
SETTINGS = Settings(
    environment="dev",
    region="us-east-1",
    raw_bucket="r",
    formatted_bucket="f",
    config_bucket="c",
    service_bus="s",
    audit_table="a",
    account_id="123456789012",
)


def test_the_deployments_guardrails_refuse_with_the_issues_own_path():
    # Given a deployment that governs sales_* databases only
    settings = dataclasses.replace(
        SETTINGS, governance_guardrails='{"governed_databases": ["sales_*"]}'
    )
    rules = DeploymentRules.from_settings(settings)
    kind = governance_kind()
    # Offline (default guardrails) the document is fine
    assert [i for i in kind.validate(DOCUMENT, "governance/hr.json") if i.severity == "error"] == []
    # When it is validated on upload with the deployment's rules
    errors = [
        i for i in kind.validate(DOCUMENT, "governance/hr.json", rules) if i.severity == "error"
    ]
    # Then each error keeps its JSON path (not one joined message at $)
    assert [e.path for e in errors] == ["$[0].named_data_catalog[0].Database"]
    assert rules.guardrails.governed_databases == ("sales_*",)
    assert rules.guardrails.home_account_id == "123456789012"


def test_explicit_guardrails_replace_the_deployments():
    kind = governance_kind(Guardrails(governed_databases=("hr_*",)))
    strict = DeploymentRules(Guardrails(governed_databases=("sales_*",)))
    assert [i for i in kind.validate(DOCUMENT, "g.json", strict) if i.severity == "error"] == []
