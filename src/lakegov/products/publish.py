"""Publishing the dbt project to the config bucket, where CodeBuild (and the local runner)
fetch it: one deterministic zip (same files -> same bytes -> same ETag), without dbt's
build output, profiles included (they take everything deployment-specific from the
environment)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakegov.errors import ConfigurationError

DEFAULT_KEY = "dbt/project.zip"
EXCLUDED_DIRS = frozenset({"target", "logs", "dbt_packages", ".git", "__pycache__", ".venv"})
EXCLUDED_FILES = frozenset({".user.yml", ".DS_Store"})
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Published:
    bucket: str
    key: str
    files: int
    size: int
    sha256: str
    version_id: str | None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def project_files(project_dir: Path) -> list[Path]:
    """The files of a dbt project worth shipping, sorted (relative paths)."""
    root = project_dir.resolve()
    if not (root / "dbt_project.yml").is_file():
        raise ConfigurationError(f"{project_dir} is not a dbt project (no dbt_project.yml)")
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in EXCLUDED_DIRS for part in relative.parts[:-1]):
            continue
        if path.is_file() and not path.is_symlink() and path.name not in EXCLUDED_FILES:
            if relative.parts[0] in EXCLUDED_DIRS:
                continue
            files.append(relative)
    return files


def build_archive(project_dir: Path) -> tuple[bytes, int]:
    """The project as a zip whose bytes depend only on the files' paths and contents."""
    root = project_dir.resolve()
    files = project_files(root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for relative in files:
            info = zipfile.ZipInfo(relative.as_posix(), date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, (root / relative).read_bytes())
    return buffer.getvalue(), len(files)


def publish_project(s3: Any, bucket: str, project_dir: Path, key: str = DEFAULT_KEY) -> Published:
    """Upload the project archive (skipped when the same bytes are already there)."""
    body, count = build_archive(project_dir)
    digest = hashlib.sha256(body).hexdigest()
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="application/zip",
        Metadata={"sha256": digest, "files": str(count)},
    )
    head = s3.head_object(Bucket=bucket, Key=key)
    return Published(bucket, key, count, len(body), digest, head.get("VersionId"))
