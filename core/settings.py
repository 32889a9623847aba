"""The one settings object, read from ``SHANHAI_*`` environment variables.

Built by :func:`get_settings` (cached) or passed explicitly to ``shanhai.app.create_app`` — never created
at import time. The embedded default needs no configuration: SQLite in ``data_dir``, tasks in-process,
a secret key generated once and kept in ``data_dir/secret_key``, and an audit signing key generated once into
``data_dir/audit_signing_key.pem``. Outside development the
validators refuse the insecure defaults.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    """Typed configuration of one Shanhai deployment."""

    model_config = SettingsConfigDict(env_prefix="SHANHAI_", extra="forbid", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(default=Path("var"), description="Where the embedded database and key live.")
    raster_dir: Path = Field(default=Path("samples/rasters"), description="Server-side raster files.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite file.")
    broker_url: str | None = Field(default=None, description="Celery broker; none = tasks in-process.")
    result_backend: str | None = Field(default=None, description="Celery results; default = broker.")
    public_base_url: str = Field(default="http://127.0.0.1:8000", description="Printed in certificates.")
    task_queue: str = Field(default="shanhai", min_length=1, description="Celery queue of this deployment.")
    secret_key: SecretStr | None = Field(default=None, description="JWT signing key.")
    audit_signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (unencrypted PEM PKCS#8) that signs audit tree heads; never in the database.",
    )
    audit_log_origin: str = Field(
        default="shanhai.example/audit-log",
        pattern=r"^[^\s+]+$",
        description="The audit log's C2SP checkpoint origin line, also the key name of its note signature (ADR 033).",
    )
    audit_witnesses: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Witnesses that cosign the audit log's checkpoints, comma-separated, each "
        "'<cosignature/v1 vkey> <add-checkpoint URL prefix>' (ADR 033).",
    )
    audit_witness_quorum: int | None = Field(
        default=None,
        ge=1,
        description="How many of the witnesses must cosign a head for it to count as witnessed (default: all).",
    )
    audit_witness_seconds: float = Field(
        default=60.0,
        gt=0,
        le=24 * 3600,
        description="How often the log submits its newest checkpoint to the witnesses (beat, or in-process).",
    )
    matcher_process: bool = Field(
        default=False,
        description="Run each API process's order-entry batches in a child process (ADR 018; for PostgreSQL).",
    )
    auth_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How long an API process trusts a user or API key row it read (0 = read on every request).",
    )
    access_token_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="Lifetime of an access token (the session timeout of a client)."
    )
    refresh_token_days: int = Field(
        default=7, ge=1, le=90, description="Lifetime of a refresh token: how long a client may stay logged in."
    )
    rate_limit_storage_url: str | None = Field(
        default=None,
        description="Where login throttles and API-key quotas are counted, a `limits` storage URI such as "
        "redis://host:6379/2; none = in this process's memory (one API process only).",
    )
    api_processes: int = Field(
        default=1, ge=1, description="How many API processes `shanhai serve` starts (more than one needs Redis)."
    )
    web_concurrency: int = Field(
        default=1,
        ge=1,
        validation_alias=AliasChoices("WEB_CONCURRENCY", "web_concurrency"),
        description="WEB_CONCURRENCY (no SHANHAI_ prefix): the worker count uvicorn's and gunicorn's command lines "
        "take from the environment. Read only to refuse several processes on the in-memory rate-limit store.",
    )
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = Field(
        default=(),
        description="Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client.",
    )
    login_user_attempts: int = Field(
        default=5, ge=1, description="Wrong passwords for one user name before it is locked out."
    )
    login_address_attempts: int = Field(
        default=30, ge=1, description="Failed logins from one client address before it is locked out."
    )
    login_lockout_seconds: float = Field(
        default=2.0, gt=0, description="The first lock-out; each further failure doubles it (exponential backoff)."
    )
    login_lockout_max_seconds: float = Field(default=900.0, gt=0, description="The longest lock-out.")
    login_failure_window_seconds: float = Field(
        default=3600.0, gt=0, description="Failures are counted for this long after the first of them."
    )
    login_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Threads that check logins at once (look-up, Argon2, audit); the rest of the API keeps its own.",
    )
    api_key_requests_per_minute: int = Field(
        default=600, ge=1, description="Quota of each API key, reported in RateLimit-* headers."
    )
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_features_per_upload: int = Field(default=10_000, ge=1)
    max_file_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1024, description="Plot files (multipart).")
    max_features_per_file: int = Field(default=100_000, ge=1)
    max_attachment_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="One evidence attachment (scan, photo, raster, report)."
    )
    evidence_dir: Path | None = Field(
        default=None,
        description="Where evidence attachments are stored by SHA-256 (default: data_dir/evidence); shared by "
        "every API process of a deployment.",
    )
    max_expanded_bytes: int = Field(default=512 * 1024 * 1024, ge=1024, description="Archives, once expanded.")
    import_stale_seconds: int = Field(
        default=1800, ge=60, description="A plot import with no sign of life for this long is ended failed."
    )
    gdal_cache_mb: int = Field(
        default=256,
        ge=16,
        description="GDAL's raster block cache in a worker (GDAL_CACHEMAX, unless set); GDAL's own default is 5 % "
        "of the machine's RAM, which dominated a 10,000² GEP run's memory.",
    )
    map_review_number: str | None = Field(
        default=None,
        description="审图号 (map review number) of the standard map shown on public maps; none = not approved.",
    )
    market_stream_poll_seconds: float = Field(
        default=0.5, gt=0, le=60, description="How often a market-data stream polls the committed journal."
    )
    market_stream_max_seconds: float = Field(
        default=3600, gt=0, description="A stream ends after this long; clients resume with Last-Event-ID."
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines as text, or as one JSON object each with the request id, route, status and latency.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    metrics_public: bool | None = Field(
        default=None,
        description="Whether GET /metrics answers without credentials; default: only in development (elsewhere the "
        "operator and auditors scrape it with an API key or a token).",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Also serve the metrics, without credentials, on this port of METRICS_HOST (`shanhai serve`).",
    )
    metrics_host: str = Field(default="127.0.0.1", description="Interface of METRICS_PORT: a private one.")
    prometheus_multiproc_dir: Path | None = Field(
        default=None,
        description="Directory where every process (API workers, matcher child, Celery workers) writes its metrics "
        "for /metrics to add up; emptied when `shanhai run`/`serve` starts. None = this process's metrics only.",
    )

    https: bool = Field(
        default=False,
        description="The deployment is served over HTTPS only (at a TLS proxy): answers carry "
        "Strict-Transport-Security. Leave off for plain-HTTP development and demos.",
    )
    session_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="A person's web session ends after this long without a request (MLPS level 3: session timeout).",
    )
    session_max_hours: int = Field(default=12, ge=1, le=24 * 7, description="A web session ends this long after login.")
    basemap_url: str | None = Field(
        default=None,
        description="XYZ/WMTS tile URL template of a basemap under the public maps ({z}/{x}/{y}; e.g. Tianditu, "
        "with its tk key); none = administrative boundaries only. The browser fetches it, so CSP allows its origin.",
    )
    basemap_datum: Literal["CGCS2000", "WGS84"] | None = Field(
        default=None,
        description="Datum of the basemap's tiles. Only CGCS2000 or WGS84 (equal at map scale) are accepted: GCJ-02 "
        "and BD-09 tiles misplace CGCS2000 plots by hundreds of metres.",
    )
    basemap_attribution: str = Field(default="", max_length=200, description="Text shown under a basemap.")
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Origins allowed to call the API from a browser, comma-separated (https://app.example.cn); "
        "none = no CORS answers (same-origin only).",
    )

    @field_validator("audit_witnesses", mode="before")
    @classmethod
    def _split_witnesses(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("audit_witnesses")
    @classmethod
    def _check_witnesses(cls, witnesses: tuple[str, ...]) -> tuple[str, ...]:
        for witness in witnesses:
            parts = witness.split()
            if len(parts) != 2 or urlsplit(parts[1]).scheme not in ("http", "https"):
                raise ValueError(f"SHANHAI_AUDIT_WITNESSES: {witness!r} is not '<vkey> <http(s) URL prefix>'")
        return witnesses

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            parts = urlsplit(origin)
            is_origin = parts.scheme in ("http", "https") and parts.netloc and not (parts.path or parts.query)
            if origin != "*" and not is_origin:
                raise ValueError(f"SHANHAI_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])")
        return origins

    @model_validator(mode="after")
    def _enforce_secure_defaults(self) -> Settings:
        if self.audit_witness_quorum is not None and self.audit_witness_quorum > len(self.audit_witnesses):
            raise ValueError("SHANHAI_AUDIT_WITNESS_QUORUM is larger than the number of SHANHAI_AUDIT_WITNESSES")
        if max(self.api_processes, self.web_concurrency) > 1 and self.rate_limit_storage_url in (None, "memory://"):
            source = "SHANHAI_API_PROCESSES" if self.api_processes > 1 else "WEB_CONCURRENCY"
            raise ValueError(
                f"several API processes ({source}) need SHANHAI_RATE_LIMIT_STORAGE_URL on Redis: each process's "
                "memory would count logins and API-key requests alone, multiplying every limit"
            )
        if self.basemap_url is not None and self.basemap_datum is None:
            raise ValueError(
                "SHANHAI_BASEMAP_URL needs SHANHAI_BASEMAP_DATUM (CGCS2000 or WGS84): GCJ-02 and BD-09 basemaps "
                "misplace CGCS2000 plots by hundreds of metres and are refused"
            )
        if self.environment == "production":
            if self.secret_key is None:
                raise ValueError("SHANHAI_SECRET_KEY must be set in production")
            if len(self.secret_key.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(f"SHANHAI_SECRET_KEY must have at least {MIN_SECRET_KEY_LENGTH} characters")
            if self.database_url is None or self.database_url.startswith("sqlite"):
                raise ValueError("production needs SHANHAI_DATABASE_URL on PostgreSQL")
            if self.audit_signing_key_file is None:
                raise ValueError("SHANHAI_AUDIT_SIGNING_KEY_FILE must be set in production")
            if "*" in self.cors_origins:
                raise ValueError("SHANHAI_CORS_ORIGINS must name the origins in production, not '*'")
        return self

    @property
    def resolved_metrics_public(self) -> bool:
        """Return whether ``/metrics`` is public: the setting, else only in development."""
        if self.metrics_public is not None:
            return self.metrics_public
        return self.environment == "development"

    @property
    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to ``sqlite:///<data_dir>/shanhai.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'shanhai.db').resolve()}"

    @property
    def resolved_evidence_dir(self) -> Path:
        """Return the evidence store's directory, defaulting to ``<data_dir>/evidence``."""
        return self.evidence_dir or self.data_dir / "evidence"

    @property
    def audit_signing_key_path(self) -> Path:
        """Return the audit signing key file, defaulting to ``<data_dir>/audit_signing_key.pem`` (development)."""
        return self.audit_signing_key_file or self.data_dir / "audit_signing_key.pem"

    @property
    def resolved_result_backend(self) -> str | None:
        """Return the Celery result backend, defaulting to the broker."""
        return self.result_backend or self.broker_url

    def signing_key(self) -> str:
        """Return the JWT signing key, generating and keeping one in ``data_dir`` if none is set.

        The generated key is written with mode 0600 so that restarts keep tokens valid.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text(encoding="ascii").strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key, encoding="ascii")
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings read from the environment (cached)."""
    return Settings()
