import pytest

from lakegov.errors import ConfigurationError
from lakegov.settings import ConsumerSettings, Settings

BASE = {
    "LAKEGOV_ENVIRONMENT": "dev",
    "AWS_REGION": "eu-west-1",
    "RAW_BUCKET": "raw",
    "FORMATTED_BUCKET": "formatted",
    "CONFIG_BUCKET": "config",
    "SERVICE_BUS": "svc",
    "AUDIT_TABLE": "audit",
}


def test_settings_are_built_from_the_environment():
    settings = Settings.from_env(
        {**BASE, "MAX_FILE_BYTES": "1024", "GLUE_DATABASE_PREFIX": "lakegov_dev_"}
    )
    assert settings.raw_bucket == "raw"
    assert settings.max_file_bytes == 1024
    assert settings.database("formatted_stg") == "lakegov_dev_formatted_stg"


def test_every_missing_variable_is_named_at_once():
    env = {k: v for k, v in BASE.items() if k not in ("RAW_BUCKET", "AUDIT_TABLE")}
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env(env)
    assert "RAW_BUCKET" in str(err.value) and "AUDIT_TABLE" in str(err.value)


def test_a_malformed_number_is_refused_with_its_name():
    with pytest.raises(ConfigurationError, match="MAX_FILE_BYTES='lots'"):
        Settings.from_env({**BASE, "MAX_FILE_BYTES": "lots"})


def test_settings_are_frozen():
    settings = Settings.from_env(BASE)
    with pytest.raises(AttributeError):
        settings.raw_bucket = "other"  # type: ignore[misc]


def test_flags_are_booleans_and_a_word_that_is_neither_is_refused_with_its_name():
    # Given the template's "false" and the runtime's "1"
    settings = Settings.from_env({**BASE, "DRIFT_RECONCILE": "false", "LAKEGOV_LOCAL": "1"})
    # Then they are the booleans they say (the string "false" is not truthy here)
    assert settings.drift_reconcile is False and settings.local_mode is True
    assert Settings.from_env({**BASE, "DRIFT_RECONCILE": "True"}).drift_reconcile is True
    assert Settings.from_env(BASE).drift_reconcile is False
    with pytest.raises(ConfigurationError, match="DRIFT_RECONCILE='maybe'"):
        Settings.from_env({**BASE, "DRIFT_RECONCILE": "maybe"})


def test_stack_lists_are_comma_separated_and_default_to_empty():
    env = {**BASE, "STACK_DATABASES": "a_db, b_db,", "STACK_PRINCIPALS": "arn:aws:iam::1:role/x"}
    settings = Settings.from_env(env)
    assert settings.stack_databases == ("a_db", "b_db")
    assert settings.stack_principals == ("arn:aws:iam::1:role/x",)
    assert Settings.from_env(BASE).stack_databases == ()


def test_a_consumer_domain_reads_its_own_variables_by_the_same_rules():
    env = {
        "DOMAIN_NAME": "sales",
        "DOMAIN_ACCOUNT_ID": "210987654321",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "CENTRAL_BUS_ARN": "arn:aws:events:eu-west-1:123456789012:event-bus/central",
    }
    settings = ConsumerSettings.from_env(env)
    assert (settings.domain, settings.region, settings.link_prefix) == (
        "sales",
        "eu-west-1",
        "shared_",
    )
    missing = {k: v for k, v in env.items() if k not in ("DOMAIN_NAME", "CENTRAL_BUS_ARN")}
    with pytest.raises(ConfigurationError) as err:
        ConsumerSettings.from_env(missing)
    assert "DOMAIN_NAME" in str(err.value) and "CENTRAL_BUS_ARN" in str(err.value)
