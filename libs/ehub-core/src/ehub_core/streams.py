"""Topic names, streams and the federated event types: one home for all three.

A hub's topics are ``ehub.<hub>.<stream>`` (:func:`hub_topic`, e.g. ``ehub.cn.orders``)
and its federation inbox on the backbone is ``ehub.fed.<hub>`` (:func:`fed_topic`).
:data:`STREAMS` says what each hub-local stream carries, in which payload encoding, and
who writes and reads it; :data:`EVENT_TYPES` says, for each event type hubs send each
other, its protobuf payload message, the stream federation ingest republishes it on and
which peers may send it.

Encodings, as they are today (docs/federation-wire.md): peers' events are republished as
the signed envelope's exact bytes (:attr:`Encoding.SIGNED_ENVELOPE`, header
``content-type: application/x-protobuf``); the saga's commands and replies, the
logistics service's tracking steps and the customs officers' decisions are JSON objects
(:attr:`Encoding.JSON`). Two streams carry both, told apart by that header:
``shipments`` (peers' shipment events and this hub's tracking) and ``customs`` (peers'
clearance events and this hub's officers' decisions) — see :attr:`Stream.encodings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from google.protobuf.message import DecodeError, Message

from ehub_core.proto.ehub.v1 import (
    catalog_pb2,
    customs_pb2,
    logistics_pb2,
    orders_pb2,
    trust_pb2,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def hub_topic(hub_id: str, stream: str) -> str:
    """Hub-local topic of a stream, e.g. ``ehub.ca.catalog-commands``."""
    return f"ehub.{hub_id.lower()}.{stream}"


def fed_topic(hub_id: str) -> str:
    """A hub's federation inbox on the backbone: peers' envelopes and receipts."""
    return f"ehub.fed.{hub_id.lower()}"


class Encoding(StrEnum):
    SIGNED_ENVELOPE = "signed-envelope"  # ehub.v1.SignedEnvelope bytes, as sealed
    JSON = "json"  # a JSON object


# -- hub-local streams --------------------------------------------------------------------

ORDERS = "orders"
CUSTOMS = "customs"
SHIPMENTS = "shipments"
TRACKING = "tracking"
CLEARANCE = "clearance"
TRUST = "trust"
LISTINGS = "listings"
LISTING_CHANGES = "listing-changes"
CATALOG_COMMANDS = "catalog-commands"
CUSTOMS_COMMANDS = "customs-commands"
LOGISTICS_COMMANDS = "logistics-commands"
SAGA_REPLIES = "saga-replies"


@dataclass(frozen=True)
class Stream:
    name: str
    encodings: tuple[Encoding, ...]
    writers: str
    readers: str

    @property
    def mixed(self) -> bool:
        """Whether the stream carries more than one encoding (told apart by the
        ``content-type`` header)."""
        return len(self.encodings) > 1


STREAMS: Mapping[str, Stream] = MappingProxyType(
    {
        s.name: s
        for s in (
            Stream(ORDERS, (Encoding.SIGNED_ENVELOPE,), "gateway federation ingest", "saga"),
            Stream(CUSTOMS, (Encoding.SIGNED_ENVELOPE,), "gateway federation ingest", "saga"),
            Stream(SHIPMENTS, (Encoding.SIGNED_ENVELOPE,), "gateway federation ingest", "saga"),
            Stream(TRACKING, (Encoding.JSON,), "logistics (its carriers' tracking)", "saga"),
            Stream(CLEARANCE, (Encoding.JSON,), "customs (officers' decisions)", "saga"),
            Stream(TRUST, (Encoding.SIGNED_ENVELOPE,), "gateway federation ingest", "-"),
            Stream(LISTINGS, (Encoding.SIGNED_ENVELOPE,), "gateway federation ingest", "catalog"),
            Stream(
                LISTING_CHANGES,
                (Encoding.JSON,),
                "catalog (its products offered in other markets)",
                "gateway (seals them for those hubs)",
            ),
            Stream(CATALOG_COMMANDS, (Encoding.JSON,), "saga", "catalog"),
            Stream(CUSTOMS_COMMANDS, (Encoding.JSON,), "saga", "customs"),
            Stream(LOGISTICS_COMMANDS, (Encoding.JSON,), "saga", "logistics"),
            Stream(SAGA_REPLIES, (Encoding.JSON,), "catalog, customs, logistics", "saga"),
        )
    }
)
"""Every hub-local stream, by name."""


# -- federated event types ----------------------------------------------------------------


class Senders(StrEnum):
    """Which peers may send an event type (beyond each peer's allow list, set by the
    operator with ``ehub peers add --allow``)."""

    ORDER_PARTY = "order-party"  # only the order's other hub (gateway federation/parties.py)
    ANY_PEER = "any-peer"  # any trusted peer, about itself


@dataclass(frozen=True)
class EventType:
    name: str
    message: type[Message]
    stream: str
    senders: Senders
    # Fields (dotted paths) that must be set for the event to mean anything; ingest
    # refuses the event (REJECTED malformed_payload) otherwise.
    required: tuple[str, ...] = ()

    def payload_problem(self, payload: bytes) -> str | None:
        """Why ``payload`` is not a usable event of this type, or None."""
        try:
            message = self.message.FromString(payload)
        except DecodeError as exc:
            return f"{self.name} payload does not parse: {exc}"
        for path in self.required:
            value: Any = message
            for part in path.split("."):
                value = getattr(value, part)
            empty = value.ByteSize() == 0 if isinstance(value, Message) else value in ("", 0)
            if empty:
                return f"{self.name} without {path}"
        return None

    @property
    def relayable(self) -> bool:
        """Whether a hub's own services may hand it to the federation relay
        (``POST /internal/v1/events``): every type but the trust stream's, which the
        gateway publishes itself."""
        return self.stream != TRUST


def _types(
    stream: str, senders: Senders, *messages: type[Message], required: tuple[str, ...] = ()
) -> list[EventType]:
    return [EventType(m.DESCRIPTOR.name, m, stream, senders, required) for m in messages]


EVENT_TYPES: Mapping[str, EventType] = MappingProxyType(
    {
        t.name: t
        for t in (
            *_types(
                ORDERS,
                Senders.ORDER_PARTY,
                orders_pb2.OrderPlaced,
                orders_pb2.OrderAccepted,
                orders_pb2.OrderRejected,
                orders_pb2.OrderCancelled,
                orders_pb2.OrderCancelRefused,
                orders_pb2.ReturnRequested,
                orders_pb2.ReturnReceived,
            ),
            *_types(
                CUSTOMS,
                Senders.ORDER_PARTY,
                customs_pb2.DeclarationFiled,
                customs_pb2.ClearanceDecided,
            ),
            *_types(
                SHIPMENTS,
                Senders.ORDER_PARTY,
                logistics_pb2.ShipmentBooked,
                logistics_pb2.ShipmentEvent,
                logistics_pb2.DeliveryConfirmed,
            ),
            *_types(TRUST, Senders.ANY_PEER, trust_pb2.KeyPublished, required=("hub_id", "key")),
            *_types(TRUST, Senders.ANY_PEER, trust_pb2.KeyRevoked, required=("hub_id", "kid")),
            # A hub speaks of its own products only: a listing's hub is its envelope's source.
            *_types(
                LISTINGS,
                Senders.ANY_PEER,
                catalog_pb2.ProductListed,
                catalog_pb2.ProductUpdated,
                required=("listing.product_id", "version"),
            ),
            *_types(
                LISTINGS,
                Senders.ANY_PEER,
                catalog_pb2.ProductDelisted,
                required=("product_id", "version"),
            ),
        )
    }
)
"""Every event type hubs send each other, by its name (the envelope's ``type``)."""

RELAYABLE_TYPES: tuple[str, ...] = tuple(t.name for t in EVENT_TYPES.values() if t.relayable)
ORDER_STREAMS: frozenset[str] = frozenset(
    t.stream for t in EVENT_TYPES.values() if t.senders is Senders.ORDER_PARTY
)
