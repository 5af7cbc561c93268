"""Gateway settings (``EHUB_*``)."""

from pathlib import Path
from typing import ClassVar

from pydantic import AnyHttpUrl, Field, SecretStr

from ehub_core.settings import CoreSettings


class GatewaySettings(CoreSettings):
    service: ClassVar[str] = "gateway"

    public_url: AnyHttpUrl | None = Field(None, description="URL peers use to reach this hub")
    catalog_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8001"), description="This hub's catalog service"
    )
    customs_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8002"), description="This hub's customs service"
    )
    logistics_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8003"), description="This hub's logistics service"
    )
    keys_dir: Path | None = Field(None, description="Hub signing keys; default <var>/<hub>/keys")
    internal_token: SecretStr | None = Field(
        None, description="Bearer token hub services use on /internal/*; unset = disabled"
    )
    backbone_id: str | None = Field(
        None,
        description="Identity of the shared Kafka backbone; peers advertising the same id "
        "are reached over it (default: the bootstrap servers)",
    )
    clock_skew: int = Field(300, ge=5, le=3600, description="Signature clock window, seconds")
    max_event_bytes: int = Field(
        262_144,
        ge=1024,
        le=900_000,
        description="Largest signed event a peer may deliver (bytes); a larger one is "
        "REJECTED event_too_large (it must also fit the broker's message size)",
    )
    receipt_timeout: float = Field(
        15.0, gt=0, le=3600, description="Re-send an event unreceipted this long (seconds)"
    )
    receipt_timeout_max: float = Field(
        120.0,
        gt=0,
        le=86400,
        description="Each further re-send of an unreceipted event waits twice as long as "
        "the last, up to this (seconds): a peer working through a backlog is not flooded",
    )
    backbone_http_fallback: int = Field(
        3,
        ge=0,
        le=1000,
        description="After this many attempts at a backbone event without a receipt, "
        "every other attempt goes over signed HTTP (0 = never)",
    )
    delivery_max_attempts: int = Field(
        12, ge=1, le=1000, description="Attempts before an event is dead-lettered"
    )
    delivery_backoff_base: float = Field(
        0.5, gt=0, le=60, description="First retry delay (s); doubles per attempt, with jitter"
    )
    delivery_backoff_max: float = Field(30.0, gt=0, le=3600, description="Longest retry delay (s)")
    delivery_batch_size: int = Field(
        100, ge=1, le=1000, description="Envelopes per federation request"
    )
    trust_reload_interval: float = Field(
        2.0, gt=0, le=300, description="Seconds between reloads of peers and keys from the database"
    )
    peer_refresh_interval: float = Field(
        300.0, gt=0, le=86400, description="Seconds between fetches of each peer's document"
    )

    order_accept_window: float = Field(
        86400.0,
        gt=0,
        le=30 * 86400,
        description="Seconds a seller has to accept an order before it is rejected",
    )
    order_offer_budget: float = Field(
        5.0, gt=0, le=60, description="Seconds the seller's hub has to answer an offer request"
    )
    order_return_window_days: int = Field(
        30,
        ge=0,
        le=365,
        description="Days after delivery a buyer may return an order (China's cross-border "
        "retail rule refunds taxes on returns within 30 days of release)",
    )
    partner_reload_interval: float = Field(
        0.5,
        gt=0,
        le=60,
        description="Seconds between reloads of partner keys (bounds how long a key revoked "
        "elsewhere is still accepted)",
    )
    saga_resend_after: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Re-send a saga command unanswered this long (s); each further attempt "
        "waits twice as long",
    )
    saga_resend_max: float = Field(
        300.0, gt=0, le=86400, description="Longest wait between re-sends of a saga command (s)"
    )

    webhook_allow_http: bool = Field(
        False,
        description="Allow http:// webhook endpoints on loopback addresses (local networks "
        "only; https:// otherwise)",
    )
    webhook_max_age: float = Field(
        86400.0,
        gt=0,
        le=30 * 86400,
        description="Seconds a webhook delivery is retried before it is marked failed",
    )
    webhook_backoff_base: float = Field(
        5.0, gt=0, le=3600, description="First webhook retry delay ceiling (s); doubles, jittered"
    )
    webhook_backoff_max: float = Field(
        3600.0, gt=0, le=86400, description="Longest webhook retry delay (s)"
    )
    webhook_timeout: float = Field(
        10.0, gt=0, le=60, description="Seconds a webhook endpoint has to answer"
    )
    webhook_concurrency: int = Field(
        32, ge=1, le=1000, description="Webhook requests in flight at once (per gateway process)"
    )
    webhook_poll_interval: float = Field(
        1.0, gt=0, le=60, description="Seconds between scans for due webhooks (commits wake it)"
    )

    @property
    def resolved_keys_dir(self) -> Path:
        return self.keys_dir or self.var_dir / self.hub_id.lower() / "keys"

    @property
    def resolved_backbone_id(self) -> str | None:
        return self.backbone_id or self.kafka_bootstrap
