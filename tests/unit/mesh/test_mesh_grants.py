"""Read access becomes a cross-account Lake Formation grant; narrowing revokes the rest."""

from lakegov.mesh.grants import read_access_document, revocation_document

SUB = {
    "domain": "marketing",
    "account_id": "222222222222",
    "event_bus_arn": "arn:aws:events:us-east-1:222222222222:event-bus/b",
    "datasets": ["sales/*"],
}


def _grant(tables=(), perms=("SELECT", "DESCRIBE"), tags=None, grant_option=False):
    access = {"tables": [{"Database": d, "Table": t} for d, t in tables], "permissions": perms}
    if tags:
        access["lf_tags"] = tags
    if grant_option:
        access["grant_option"] = True
    return read_access_document({**SUB, "read_access": access})


def test_no_read_access_asked_means_no_grant():
    assert read_access_document(SUB) is None


def test_read_access_is_the_original_governance_format_for_the_domain_account():
    doc = _grant([("db", "orders")], tags=[{"TagKey": "domain", "TagValues": ["sales"]}])
    assert doc == [
        {
            "role_arn": "222222222222",
            "access_type": "GRANT",
            "lf_tags": [{"TagKey": "domain", "TagValues": ["sales"]}],
            "named_data_catalog": [{"Database": "db", "Table": "orders"}],
            "table_permissions": ["SELECT", "DESCRIBE"],
        }
    ]
    assert _grant([("db", "*")], grant_option=True)[0]["grant_option"] is True


def test_unchanged_access_revokes_nothing_and_removal_revokes_everything():
    granted = _grant([("db", "a"), ("db", "b")])
    assert revocation_document(granted, granted) is None
    assert revocation_document(None, granted) is None
    (revoke,) = revocation_document(granted, None)
    assert revoke["access_type"] == "REVOKE" and revoke["role_arn"] == "222222222222"
    assert revoke["named_data_catalog"] == [
        {"Database": "db", "Table": "a"},
        {"Database": "db", "Table": "b"},
    ]
    assert revoke["table_permissions"] == ["DESCRIBE", "SELECT"]


def test_narrowing_revokes_exactly_the_dropped_tables_and_permissions():
    before = _grant([("db", "a"), ("db", "b")], perms=("SELECT", "DESCRIBE"))
    after = _grant([("db", "a")], perms=("DESCRIBE",))
    dropped, narrowed = revocation_document(before, after)
    assert dropped["named_data_catalog"] == [{"Database": "db", "Table": "b"}]
    assert dropped["table_permissions"] == ["DESCRIBE", "SELECT"]
    assert narrowed["named_data_catalog"] == [{"Database": "db", "Table": "a"}]
    assert narrowed["table_permissions"] == ["SELECT"]


def test_a_changed_tag_expression_revokes_the_old_expression():
    old = _grant(tags=[{"TagKey": "domain", "TagValues": ["sales"]}])
    new = _grant(tags=[{"TagKey": "domain", "TagValues": ["sales", "hr"]}])
    (revoke,) = revocation_document(old, new)
    assert revoke["lf_tags"] == [{"TagKey": "domain", "TagValues": ["sales"]}]
    assert revoke["named_data_catalog"] == []
    assert revocation_document(new, new) is None
