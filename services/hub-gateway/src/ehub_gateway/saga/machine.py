"""The order saga as a table: for each side of an order, (state, input) -> (next state,
actions). Pure data and one lookup function; the runner (``saga/runner.py``) feeds it
inputs and carries out the actions (commands to this hub's services through the outbox,
events to the peer hub through the federation), all in the transaction that records the
input.

Inputs are the names of events and replies (``OrderAccepted``, ``StockReserved``, ...),
some refined by their outcome (``ImportDecided:cleared``), a customs officer's decision
on a held declaration (``OfficerDecided:cleared``, from ``ehub.<hub>.customs``), plus
partner requests
(``accept``, ``reject``, ``cancel``) and the seller's deadline (``deadline``).
Carrier progress is ``moving`` (any tracking step short of delivery).

An input with no entry for the current state changes nothing (it is still recorded in
the timeline); a partner request with no entry is refused with 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    BUYER = "buyer"  # this hub is the buyer's: the order was placed here
    SELLER = "seller"  # this hub is the seller's: the order arrived from a peer


class State(StrEnum):
    # buyer's hub
    PLACED = "placed"  # priced; import pre-declaration filed
    IMPORT_HELD = "import_held"  # customs holds it before it goes to the seller
    AWAITING_SELLER = "awaiting_seller"  # sent to the seller's hub
    # seller's hub
    RESERVING = "reserving"  # stock being reserved
    AWAITING_ACCEPTANCE = "awaiting_acceptance"  # the seller decides (or the deadline)
    EXPORT_CLEARANCE = "export_clearance"  # accepted; export declaration filed
    EXPORT_HELD = "export_held"  # customs holds the export for an officer
    BOOKING = "booking"  # export cleared; shipment being booked
    RELEASING = "releasing"  # cancelled shipment; stock being released
    # both
    ACCEPTED = "accepted"  # buyer's view of an accepted order not yet booked
    SHIPPED = "shipped"  # booked with a carrier, label printed
    IN_TRANSIT = "in_transit"  # the carrier has it
    DELIVERED = "delivered"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    RETURNING = "returning"  # a return shipment is on its way back to the seller
    RETURNED = "returned"  # the seller received it; taxes claimed back
    UNDELIVERED = "undelivered"  # the carrier could not deliver and brought it back


TERMINAL = frozenset(
    {State.DELIVERED, State.CANCELLED, State.REJECTED, State.RETURNED, State.UNDELIVERED}
)


class Action(StrEnum):
    # commands to this hub's services
    FILE_IMPORT = "file_import"
    RELEASE_ALLOWANCE = "release_allowance"
    CONFIRM_ALLOWANCE = "confirm_allowance"
    RESERVE_STOCK = "reserve_stock"
    RELEASE_STOCK = "release_stock"
    FILE_EXPORT = "file_export"
    BOOK_SHIPMENT = "book_shipment"
    CANCEL_SHIPMENT = "cancel_shipment"
    BOOK_RETURN = "book_return"
    FILE_REFUND_CLAIM = "file_refund_claim"
    RESTOCK = "restock"
    # events to the peer hub
    SEND_PLACED = "send_placed"
    SEND_CANCEL = "send_cancel"
    SEND_ACCEPTED = "send_accepted"
    SEND_REJECTED = "send_rejected"
    SEND_EXPORT_DECISION = "send_export_decision"
    SEND_CANCELLED = "send_cancelled"
    SEND_CANCEL_REFUSED = "send_cancel_refused"
    SEND_RETURN_REQUESTED = "send_return_requested"
    SEND_RETURN_RECEIVED = "send_return_received"


@dataclass(frozen=True)
class Step:
    to: State
    actions: tuple[Action, ...] = ()


S, A = State, Action

BUYER: dict[tuple[State, str], Step] = {
    (S.PLACED, "ImportDecided:cleared"): Step(S.AWAITING_SELLER, (A.SEND_PLACED,)),
    (S.PLACED, "ImportDecided:held"): Step(S.IMPORT_HELD),
    (S.PLACED, "ImportDecided:inspect"): Step(S.IMPORT_HELD),
    (S.PLACED, "ImportDecided:rejected"): Step(S.REJECTED, (A.RELEASE_ALLOWANCE,)),
    (S.PLACED, "cancel"): Step(S.CANCELLED, (A.RELEASE_ALLOWANCE,)),
    (S.IMPORT_HELD, "cancel"): Step(S.CANCELLED, (A.RELEASE_ALLOWANCE,)),
    # An officer decides the held import: released, it goes to the seller; rejected, it
    # is compensated as any rejection; an inspection or a request for documents keeps it.
    (S.IMPORT_HELD, "OfficerDecided:cleared"): Step(S.AWAITING_SELLER, (A.SEND_PLACED,)),
    (S.IMPORT_HELD, "OfficerDecided:rejected"): Step(S.REJECTED, (A.RELEASE_ALLOWANCE,)),
    (S.IMPORT_HELD, "OfficerDecided:inspect"): Step(S.IMPORT_HELD),
    (S.IMPORT_HELD, "OfficerDecided:held"): Step(S.IMPORT_HELD),
    # The officer's event may overtake the reply that held it (another topic).
    (S.PLACED, "OfficerDecided:cleared"): Step(S.AWAITING_SELLER, (A.SEND_PLACED,)),
    (S.PLACED, "OfficerDecided:rejected"): Step(S.REJECTED, (A.RELEASE_ALLOWANCE,)),
    (S.AWAITING_SELLER, "OrderAccepted"): Step(S.ACCEPTED),
    (S.AWAITING_SELLER, "OrderRejected"): Step(S.REJECTED, (A.RELEASE_ALLOWANCE,)),
    (S.AWAITING_SELLER, "cancel"): Step(S.CANCELLING, (A.SEND_CANCEL,)),
    # Streams are ordered per topic, not across topics: shipment news may overtake the
    # acceptance, and the order follows the furthest news.
    (S.AWAITING_SELLER, "ShipmentBooked"): Step(S.SHIPPED),
    (S.AWAITING_SELLER, "moving"): Step(S.IN_TRANSIT),
    (S.AWAITING_SELLER, "DeliveryConfirmed"): Step(S.DELIVERED, (A.CONFIRM_ALLOWANCE,)),
    (S.ACCEPTED, "DeliveryConfirmed"): Step(S.DELIVERED, (A.CONFIRM_ALLOWANCE,)),
    (S.ACCEPTED, "ShipmentBooked"): Step(S.SHIPPED),
    (S.ACCEPTED, "moving"): Step(S.IN_TRANSIT),
    (S.ACCEPTED, "OrderRejected"): Step(S.REJECTED, (A.RELEASE_ALLOWANCE,)),
    (S.ACCEPTED, "cancel"): Step(S.CANCELLING, (A.SEND_CANCEL,)),
    (S.SHIPPED, "moving"): Step(S.IN_TRANSIT),
    (S.SHIPPED, "DeliveryConfirmed"): Step(S.DELIVERED, (A.CONFIRM_ALLOWANCE,)),
    (S.SHIPPED, "OrderRejected"): Step(S.REJECTED, (A.RELEASE_ALLOWANCE,)),
    (S.SHIPPED, "cancel"): Step(S.CANCELLING, (A.SEND_CANCEL,)),
    (S.IN_TRANSIT, "moving"): Step(S.IN_TRANSIT),
    (S.IN_TRANSIT, "DeliveryConfirmed"): Step(S.DELIVERED, (A.CONFIRM_ALLOWANCE,)),
    (S.CANCELLING, "OrderCancelled"): Step(S.CANCELLED, (A.RELEASE_ALLOWANCE,)),
    (S.CANCELLING, "OrderRejected"): Step(S.REJECTED, (A.RELEASE_ALLOWANCE,)),
    (S.CANCELLING, "OrderCancelRefused"): Step(S.IN_TRANSIT),
    # The parcel was faster than the cancellation: delivered it is.
    (S.CANCELLING, "DeliveryConfirmed"): Step(S.DELIVERED, (A.CONFIRM_ALLOWANCE,)),
    # Returns: booked here, announced to the seller's hub, taxes claimed back on receipt.
    (S.DELIVERED, "return"): Step(S.RETURNING, (A.BOOK_RETURN,)),
    (S.RETURNING, "ShipmentReady"): Step(S.RETURNING, (A.SEND_RETURN_REQUESTED,)),
    (S.RETURNING, "ShipmentRefused"): Step(S.DELIVERED),
    (S.RETURNING, "ReturnReceived"): Step(S.RETURNED, (A.FILE_REFUND_CLAIM,)),
    # The carrier brought the return parcel back to the buyer: delivered it stays.
    (S.RETURNING, "return_failed"): Step(S.DELIVERED),
    # The carrier gave up and took the parcel back to the seller: nothing was imported.
    (S.AWAITING_SELLER, "carrier_returned"): Step(S.UNDELIVERED, (A.RELEASE_ALLOWANCE,)),
    (S.ACCEPTED, "carrier_returned"): Step(S.UNDELIVERED, (A.RELEASE_ALLOWANCE,)),
    (S.SHIPPED, "carrier_returned"): Step(S.UNDELIVERED, (A.RELEASE_ALLOWANCE,)),
    (S.IN_TRANSIT, "carrier_returned"): Step(S.UNDELIVERED, (A.RELEASE_ALLOWANCE,)),
    (S.CANCELLING, "carrier_returned"): Step(S.UNDELIVERED, (A.RELEASE_ALLOWANCE,)),
}

SELLER: dict[tuple[State, str], Step] = {
    (S.RESERVING, "StockReserved:auto"): Step(S.EXPORT_CLEARANCE, (A.SEND_ACCEPTED, A.FILE_EXPORT)),
    (S.RESERVING, "StockReserved:manual"): Step(S.AWAITING_ACCEPTANCE),
    (S.RESERVING, "StockRefused"): Step(S.REJECTED, (A.SEND_REJECTED,)),
    (S.RESERVING, "CommandFailed"): Step(S.REJECTED, (A.RELEASE_STOCK, A.SEND_REJECTED)),
    (S.RESERVING, "OrderCancelled"): Step(S.CANCELLING, (A.CANCEL_SHIPMENT,)),
    (S.AWAITING_ACCEPTANCE, "accept"): Step(S.EXPORT_CLEARANCE, (A.SEND_ACCEPTED, A.FILE_EXPORT)),
    (S.AWAITING_ACCEPTANCE, "reject"): Step(S.REJECTED, (A.RELEASE_STOCK, A.SEND_REJECTED)),
    (S.AWAITING_ACCEPTANCE, "deadline"): Step(S.REJECTED, (A.RELEASE_STOCK, A.SEND_REJECTED)),
    (S.AWAITING_ACCEPTANCE, "OrderCancelled"): Step(S.CANCELLING, (A.CANCEL_SHIPMENT,)),
    (S.EXPORT_CLEARANCE, "ExportDecided:cleared"): Step(
        S.BOOKING, (A.SEND_EXPORT_DECISION, A.BOOK_SHIPMENT)
    ),
    # A held export waits for an officer (the buyer's hub is told it is held).
    (S.EXPORT_CLEARANCE, "ExportDecided:held"): Step(S.EXPORT_HELD, (A.SEND_EXPORT_DECISION,)),
    (S.EXPORT_CLEARANCE, "ExportDecided:inspect"): Step(S.EXPORT_HELD, (A.SEND_EXPORT_DECISION,)),
    (S.EXPORT_CLEARANCE, "ExportDecided:rejected"): Step(
        S.REJECTED, (A.SEND_EXPORT_DECISION, A.RELEASE_STOCK, A.SEND_REJECTED)
    ),
    (S.EXPORT_CLEARANCE, "CommandFailed"): Step(S.REJECTED, (A.RELEASE_STOCK, A.SEND_REJECTED)),
    (S.EXPORT_CLEARANCE, "OrderCancelled"): Step(S.CANCELLING, (A.CANCEL_SHIPMENT,)),
    (S.EXPORT_CLEARANCE, "OfficerDecided:cleared"): Step(
        S.BOOKING, (A.SEND_EXPORT_DECISION, A.BOOK_SHIPMENT)
    ),
    (S.EXPORT_CLEARANCE, "OfficerDecided:rejected"): Step(
        S.REJECTED, (A.SEND_EXPORT_DECISION, A.RELEASE_STOCK, A.SEND_REJECTED)
    ),
    (S.EXPORT_HELD, "OfficerDecided:cleared"): Step(
        S.BOOKING, (A.SEND_EXPORT_DECISION, A.BOOK_SHIPMENT)
    ),
    (S.EXPORT_HELD, "OfficerDecided:rejected"): Step(
        S.REJECTED, (A.SEND_EXPORT_DECISION, A.RELEASE_STOCK, A.SEND_REJECTED)
    ),
    (S.EXPORT_HELD, "OfficerDecided:inspect"): Step(S.EXPORT_HELD, (A.SEND_EXPORT_DECISION,)),
    (S.EXPORT_HELD, "OfficerDecided:held"): Step(S.EXPORT_HELD, (A.SEND_EXPORT_DECISION,)),
    (S.EXPORT_HELD, "OrderCancelled"): Step(S.CANCELLING, (A.CANCEL_SHIPMENT,)),
    (S.BOOKING, "ShipmentReady"): Step(S.SHIPPED),
    (S.BOOKING, "ShipmentRefused"): Step(S.REJECTED, (A.RELEASE_STOCK, A.SEND_REJECTED)),
    (S.BOOKING, "CommandFailed"): Step(S.REJECTED, (A.RELEASE_STOCK, A.SEND_REJECTED)),
    (S.BOOKING, "OrderCancelled"): Step(S.CANCELLING, (A.CANCEL_SHIPMENT,)),
    (S.BOOKING, "moving"): Step(S.IN_TRANSIT),
    (S.BOOKING, "DeliveryConfirmed"): Step(S.DELIVERED),
    (S.SHIPPED, "moving"): Step(S.IN_TRANSIT),
    (S.SHIPPED, "DeliveryConfirmed"): Step(S.DELIVERED),
    (S.SHIPPED, "OrderCancelled"): Step(S.CANCELLING, (A.CANCEL_SHIPMENT,)),
    (S.IN_TRANSIT, "moving"): Step(S.IN_TRANSIT),
    (S.IN_TRANSIT, "DeliveryConfirmed"): Step(S.DELIVERED),
    (S.IN_TRANSIT, "OrderCancelled"): Step(S.IN_TRANSIT, (A.SEND_CANCEL_REFUSED,)),
    (S.DELIVERED, "OrderCancelled"): Step(S.DELIVERED, (A.SEND_CANCEL_REFUSED,)),
    # A booking that raced the cancellation is cancelled in turn.
    (S.CANCELLING, "ShipmentReady"): Step(S.CANCELLING, (A.CANCEL_SHIPMENT,)),
    (S.CANCELLING, "ShipmentCancelled"): Step(S.RELEASING, (A.RELEASE_STOCK,)),
    (S.CANCELLING, "ShipmentCancelRefused"): Step(S.IN_TRANSIT, (A.SEND_CANCEL_REFUSED,)),
    (S.CANCELLING, "DeliveryConfirmed"): Step(S.DELIVERED, (A.SEND_CANCEL_REFUSED,)),
    (S.RELEASING, "StockReleased"): Step(S.CANCELLED, (A.SEND_CANCELLED,)),
    (S.BOOKING, "carrier_returned"): Step(S.UNDELIVERED, (A.RESTOCK,)),
    (S.SHIPPED, "carrier_returned"): Step(S.UNDELIVERED, (A.RESTOCK,)),
    (S.IN_TRANSIT, "carrier_returned"): Step(S.UNDELIVERED, (A.RESTOCK,)),
    (S.DELIVERED, "ReturnRequested"): Step(S.RETURNING),
    # The return's tracking may overtake its announcement (another topic): it follows
    # the furthest news, and a late announcement of an ended return changes nothing.
    (S.DELIVERED, "return_moving"): Step(S.RETURNING),
    (S.DELIVERED, "return_delivered"): Step(S.RETURNING, (A.RESTOCK,)),
    (S.DELIVERED, "return_failed"): Step(S.DELIVERED),
    (S.RETURNING, "return_moving"): Step(S.RETURNING),
    (S.RETURNING, "return_delivered"): Step(S.RETURNING, (A.RESTOCK,)),
    (S.RETURNING, "StockRestocked"): Step(S.RETURNED, (A.SEND_RETURN_RECEIVED,)),
    (S.RETURNING, "return_failed"): Step(S.DELIVERED),
}

TABLES = {Role.BUYER: BUYER, Role.SELLER: SELLER}

# What a partner may ask of an order in each state, per side (GET shows it as "next").
REQUESTS = ("accept", "reject", "cancel", "return")


def step(role: Role, state: State, event: str) -> Step | None:
    """The transition for ``event`` in ``state``, or None if it changes nothing."""
    return TABLES[role].get((state, event))


def allowed_requests(role: Role, state: State) -> list[str]:
    table = TABLES[role]
    return [r for r in REQUESTS if (state, r) in table]
