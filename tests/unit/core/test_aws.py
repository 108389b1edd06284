"""Sessions and clients from lakegov.aws: each session keeps its own credentials, and the
SDK's models are read once per process, not once per session."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.loaders import JSONFileLoader

from lakegov.aws import RETRY_CONFIG, session_with


@pytest.fixture
def files_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SDK data file read from here on."""
    read: list[str] = []
    load = JSONFileLoader.load_file

    def counting(self: Any, file_path: str) -> Any:
        read.append(file_path)
        return load(self, file_path)

    monkeypatch.setattr(JSONFileLoader, "load_file", counting)
    return read


def _clients(session: Any) -> list[Any]:
    return [
        session.client(service, endpoint_url="http://127.0.0.1:9", config=RETRY_CONFIG)
        for service in ("s3", "dynamodb", "events")
    ]


def test_a_new_session_builds_its_clients_without_reading_the_models_again(
    files_read: list[str],
) -> None:
    _clients(session_with(region="us-east-1", access_key="a", secret_key="b"))
    files_read.clear()  # whatever an earlier test left unread is read by now
    second = session_with(region="eu-west-1", access_key="c", secret_key="d")
    clients = _clients(second)
    assert files_read == []
    # and each session is still its own: its keys, its region
    assert second.get_credentials().access_key == "c"
    assert {c.meta.region_name for c in clients} == {"eu-west-1"}
    first = session_with(region="us-east-1", access_key="a", secret_key="b")
    assert first.get_credentials().access_key == "a"


def test_the_shared_loader_search_path_does_not_grow_with_each_session() -> None:
    def search_path() -> list[str]:
        session = session_with(region="us-east-1", access_key="a", secret_key="b")
        return list(session._session.get_component("data_loader").search_paths)

    first = search_path()
    assert [search_path() for _ in range(3)] == [first] * 3
    assert len(first) == len(set(first))
    # boto3's own models (resources) stay reachable
    assert any(path.endswith("boto3/data") for path in first)
