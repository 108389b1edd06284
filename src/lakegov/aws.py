"""AWS client factory: one place that builds boto3 clients.

Clients are created lazily, once per warm container, with adaptive retries. Domain code
never calls this module: handlers and the CLI build a :class:`Clients` and pass the
clients they need down as arguments.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import boto3
import botocore
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader, create_loader

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=5,
    read_timeout=60,
    user_agent_extra="lakegov",
)

# botocore builds its User-Agent header anew for every request, twice (~40 us of CPU each:
# the embedded runtime's handlers make some 20 calls per landed file); given one, it sends
# that. AWS reads the SDK's own header (its feature ids) for its metrics; moto reads none.
LOCAL_USER_AGENT = f"Boto3/{boto3.__version__} Botocore/{botocore.__version__} lakegov-local"


def local_endpoint_config(config: Config) -> Config:
    """``config`` for clients of a local endpoint (moto): the same retries and timeouts, with
    a fixed User-Agent header."""
    return config.merge(Config(user_agent=LOCAL_USER_AGENT))


# A local endpoint (moto) answers at once or not at all: fail fast with a clear message.
LOCAL_ENDPOINT_CONFIG = local_endpoint_config(
    Config(
        connect_timeout=2,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 2},
        user_agent_extra="lakegov",
    )
)
MOTO_KEYS = ("testing", "testing")  # what moto accepts; used when no credentials are configured

# What boto3 reads from the environment for static credentials (Lambda sets all three).
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class Clients:
    """Lazy, cached boto3 clients sharing one session.

    ``endpoint_url`` overrides every service's endpoint (the embedded runtime's moto
    server); when empty, boto3's own resolution applies, which also honours
    ``AWS_ENDPOINT_URL`` and the per-service ``AWS_ENDPOINT_URL_<SERVICE>`` variables.
    """

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        config: Config = RETRY_CONFIG,
    ) -> None:
        self._session = session or session_with(region=region)
        self._endpoint_url = endpoint_url or None
        self._config = config
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(
        cls,
        environment: Mapping[str, str],
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        config: Config = RETRY_CONFIG,
    ) -> Clients:
        """Clients with the credentials ``environment`` carries (a function's environment on
        the embedded runtime, Lambda's own in Lambda), else boto3's usual chain."""
        return cls(
            session_with(
                region=region,
                access_key=environment.get("AWS_ACCESS_KEY_ID", ""),
                secret_key=environment.get("AWS_SECRET_ACCESS_KEY", ""),
                session_token=environment.get("AWS_SESSION_TOKEN", ""),
            ),
            endpoint_url=endpoint_url,
            config=config,
        )

    @classmethod
    def for_endpoint(cls, endpoint_url: str | None = None, *, region: str | None = None) -> Clients:
        """Clients for a command line: AWS as the environment configures it (profile,
        environment, instance role), or the local endpoint at ``endpoint_url``, failing fast,
        with moto's test keys when nothing else is configured."""
        if not endpoint_url:
            return cls(region=region)
        session = session_with(region=region)
        if session.get_credentials() is None:
            session = session_with(region=region, access_key=MOTO_KEYS[0], secret_key=MOTO_KEYS[1])
        return cls(session, endpoint_url=endpoint_url, config=LOCAL_ENDPOINT_CONFIG)

    def assuming(self, role_arn: str, session_name: str) -> Clients:
        """Clients acting as ``role_arn`` (assumed through this session's STS), on the same
        endpoint, region and retry configuration."""
        creds = self("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)[
            "Credentials"
        ]
        session = session_with(
            region=self.region or self("sts").meta.region_name,
            access_key=creds["AccessKeyId"],
            secret_key=creds["SecretAccessKey"],
            session_token=creds["SessionToken"],
        )
        return Clients(session, endpoint_url=self._endpoint_url, config=self._config)

    @property
    def region(self) -> str:
        return str(self._session.region_name or "")

    def credentials(self) -> Any:
        """The session's resolved credentials (botocore ``Credentials``, or None)."""
        return self._session.get_credentials()

    def __call__(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                kwargs: dict[str, Any] = {"config": self._config}
                if self._endpoint_url:
                    kwargs["endpoint_url"] = self._endpoint_url
                client = self._session.client(service, **kwargs)
                self._clients[service] = client
            return client


def session_with(
    *,
    region: str | None = None,
    profile: str | None = None,
    access_key: str = "",
    secret_key: str = "",
    session_token: str = "",
) -> boto3.session.Session:
    """A boto3 session: explicit keys when given (both of them), else the profile or
    boto3's default chain. It reads the SDK's models through the process's shared loader."""
    core = botocore.session.get_session()
    loader = _shared_loader(core.get_config_variable("data_path"))
    core.register_component("data_loader", loader)
    if access_key and secret_key:
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=session_token or None,
            region_name=region or None,
            botocore_session=core,
        )
    else:
        session = boto3.session.Session(
            profile_name=profile or None, region_name=region or None, botocore_session=core
        )
    # boto3 adds its own folder to the loader's search path per session: once is enough
    with _loaders_lock:
        loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session


# A session of its own reads and parses the SDK's JSON models anew: ~45 ms of CPU for each
# client it builds, against ~5 ms with models already loaded. The loader only caches what it
# read (the models are never changed), so every session of the process shares one; the
# embedded runtime builds a session per function, Lambda one per container.
_loaders: dict[str | None, Loader] = {}
_loaders_lock = threading.Lock()


def _shared_loader(data_path: str | None) -> Loader:
    with _loaders_lock:
        loader = _loaders.get(data_path)
        if loader is None:
            loader = _loaders[data_path] = create_loader(data_path)
        return loader


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "RequestThrottled",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "InternalServiceException",
    }
)


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying as they are (throttling, 5xx, concurrent edits)."""
    code = error_code(exc)
    return code in THROTTLING_CODES or code in {
        "ConcurrentModificationException",
        "CrawlerRunningException",
        "OperationTimeoutException",
    }
