"""Service settings from the environment (``EHUB_*``), validated once at start-up.

Nothing reads the environment at import time: a service calls :func:`load_settings`
when it starts, and a bad or missing value stops it with one line naming the variable
and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ehub_core.countries import country_code
from ehub_core.streams import hub_topic

EXIT_BAD_SETTINGS = 2


class CoreSettings(BaseSettings):
    """Settings every service shares; each service subclasses it and sets ``service``."""

    model_config = SettingsConfigDict(env_prefix="EHUB_", extra="ignore", frozen=True)

    service: ClassVar[str] = "core"

    hub_id: str = Field("CN", description="ISO 3166-1 alpha-2 code of this hub's country")
    hub_name: str | None = Field(None, description="Human-readable hub name")
    database_url: str = Field(
        "sqlite+aiosqlite:///{var_dir}/{hub}/{service}.db",
        description="SQLAlchemy async URL; {hub}, {service} and {var_dir} are filled in",
    )
    var_dir: Path = Field(Path("var"), description="Directory for local state (SQLite, keys)")
    kafka_bootstrap: str | None = Field(
        None, description="Kafka bootstrap servers; unset = no broker (events stay in outbox)"
    )
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP traces endpoint")
    log_level: str = Field("INFO", description="Python logging level name")
    log_json: bool = Field(True, description="JSON log lines (false: plain text)")
    access_log: bool = Field(
        True,
        description="One log line per request on the ehub.access logger: method, route "
        "template, status, latency (ms), trace id, partner id",
    )
    relay_batch_size: int = Field(500, ge=1, le=10_000, description="Outbox rows per relay batch")
    relay_poll_interval: float = Field(
        0.5, gt=0, le=60, description="Seconds between outbox scans when idle (commits wake it)"
    )
    relay_audit_interval: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Seconds between two checks that the broker still holds what it "
        "acknowledged to the outbox relay",
    )
    relay_replay_window: float = Field(
        120.0,
        ge=0,
        le=7 * 86400,
        description="When the broker lost acknowledged events, the relay publishes again "
        "those sent in the last this many seconds",
    )
    relay_replay_on_start: bool = Field(
        True,
        description="The relay publishes again, once at start, what was sent in the last "
        "replay window: a broker that lost its log while the service was down is not "
        "seen otherwise (consumers skip copies). May be off on a replicated Kafka",
    )
    migrate_on_start: bool = Field(True, description="Apply Alembic migrations at start")
    internal_token: SecretStr | None = Field(
        None,
        description="The hub's internal credential: the gateway sends it as X-Ehub-Gateway "
        "when it forwards a partner's call, operators as 'Authorization: Bearer' on "
        "/operator/v1/*. Unset = development only: services take anonymous callers and "
        "the operator API is off (docs/partners.md)",
    )
    # Input limits (ehub_core.limits, docs/security.md).
    max_body_bytes: int = Field(
        1 << 20,
        ge=1024,
        le=1 << 30,
        description="Largest request body (bytes) a route takes unless it has its own limit; "
        "over it: 413, from Content-Length before reading or while a body streams",
    )
    max_body_bytes_paths: dict[str, int] = Field(
        default_factory=dict,
        description='Per-path body limits (JSON, e.g. {"/federation/v1/events": 33554432}); '
        "they override the service's own per-path limits",
    )
    body_timeout: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a request body has to arrive once the service reads it (408)",
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a connection has to send a complete request line and headers "
        "(from opening, or from the first byte of a kept-alive connection's next request)",
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, le=1 << 20, description="Largest request line and headers (bytes)"
    )
    keep_alive_timeout: int = Field(
        5, ge=1, le=600, description="Seconds an idle kept-alive connection stays open"
    )
    max_connections: int = Field(
        1024,
        ge=0,
        le=100_000,
        description="Open connections before new requests are answered 503 (uvicorn "
        "limit_concurrency); 0 = unlimited",
    )

    @field_validator("hub_id")
    @classmethod
    def _hub_is_iso_code(cls, value: str) -> str:
        # Checked against ISO 3166-1 (pycountry), not only its shape: XX or ZZ is refused.
        return country_code(value)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {value.split(':', 1)[0]}://...)"
            )
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL with ``{hub}``, ``{service}`` and ``{var_dir}`` filled in."""
        return self.database_url.format(
            hub=self.hub_id.lower(), service=self.service, var_dir=self.var_dir
        )

    def topic(self, stream: str) -> str:
        """Hub-local topic name, e.g. ``ehub.cn.orders`` (named in ``ehub_core.streams``)."""
        return hub_topic(self.hub_id, stream)


S = TypeVar("S", bound=CoreSettings)


def describe_error(cls: type[CoreSettings], exc: ValidationError) -> str:
    """One line naming each bad variable, e.g. ``EHUB_HUB_ID: must be ...``."""
    prefix = cls.model_config.get("env_prefix", "")
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "?"
        parts.append(f"{prefix}{field.upper()}: {err['msg']}")
    return "invalid settings: " + "; ".join(parts)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build settings from the environment or exit(2) with one clear line on stderr."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        print(f"ehub {cls.service}: {describe_error(cls, exc)}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None
