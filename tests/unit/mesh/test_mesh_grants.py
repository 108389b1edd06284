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


def test_dropping_the_grant_option_revokes_the_kept_permissions_to_grant_them_again():
    """Given SELECT, DESCRIBE on a and b with the grant option, when the option is dropped
    (and b with it), then the kept permissions on a (and the tag expression) are revoked,
    to be granted again without the option; b is left to the ordinary revocation."""
    tags = [{"TagKey": "domain", "TagValues": ["sales"]}]
    before = _grant([("db", "a"), ("db", "b")], tags=tags, grant_option=True)
    after = _grant([("db", "a")], perms=("SELECT",), tags=tags)
    from lakegov.mesh.grants import grant_option_revocation

    (revoke,) = grant_option_revocation(before, after)
    assert revoke["access_type"] == "REVOKE" and revoke["role_arn"] == "222222222222"
    assert revoke["named_data_catalog"] == [{"Database": "db", "Table": "a"}]
    assert revoke["lf_tags"] == tags
    assert revoke["table_permissions"] == ["SELECT"]
    assert grant_option_revocation(before, before) is None
    assert grant_option_revocation(after, before) is None  # gaining the option: a grant
    assert grant_option_revocation(before, None) is None  # removal: revocation_document


def test_a_revoke_spares_what_another_subscription_still_grants():
    """Given another subscription granting SELECT on db.a to the same account, removing
    ours revokes DESCRIBE on db.a and everything on db.b, and says what it kept."""
    from lakegov.mesh.grants import without_other_grants

    ours = _grant([("db", "a"), ("db", "b")])
    others = {"subscriptions/other.json": _grant([("db", "a")], perms=("SELECT",))}
    revoke, warnings = without_other_grants(revocation_document(ours, None), others)
    assert [(r["named_data_catalog"], r["table_permissions"]) for r in revoke] == [
        ([{"Database": "db", "Table": "a"}], ["DESCRIBE"]),
        ([{"Database": "db", "Table": "b"}], ["DESCRIBE", "SELECT"]),
    ]
    assert warnings == [
        "kept SELECT on db.a for 222222222222: subscriptions/other.json still grants it"
    ]
    # another principal, or another table, spares nothing
    elsewhere = {"x": [{**others["subscriptions/other.json"][0], "role_arn": "333333333333"}]}
    assert without_other_grants(revocation_document(ours, None), elsewhere)[0] == (
        revocation_document(ours, None)
    )
    # only grant options are spared from a grant-option revocation
    option_revoke = [{**revocation_document(ours, None)[0], "table_permissions": ["SELECT"]}]
    assert without_other_grants(option_revoke, others, grant_options_only=True)[0] == (
        option_revoke
    )
    with_option = {"o": _grant([("db", "a"), ("db", "b")], perms=("SELECT",), grant_option=True)}
    assert without_other_grants(option_revoke, with_option, grant_options_only=True) == (
        None,
        [
            "kept SELECT on db.a for 222222222222: o still grants it",
            "kept SELECT on db.b for 222222222222: o still grants it",
        ],
    )


def test_a_revoke_spares_the_same_tag_expression_granted_by_another_subscription():
    from lakegov.mesh.grants import without_other_grants

    tags = [{"TagKey": "domain", "TagValues": ["sales"]}]
    ours = _grant(tags=tags)
    revoke, warnings = without_other_grants(
        revocation_document(ours, None), {"o": _grant(tags=tags, perms=("DESCRIBE",))}
    )
    assert [(r["lf_tags"], r["table_permissions"]) for r in revoke] == [(tags, ["SELECT"])]
    assert len(warnings) == 1
    other_expression = {"o": _grant(tags=[{"TagKey": "domain", "TagValues": ["hr"]}])}
    assert without_other_grants(revocation_document(ours, None), other_expression)[1] == []
