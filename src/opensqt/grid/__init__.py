"""The trailing grid market maker: pure strategy, slot transitions and client order ids.

:class:`Strategy` decides; :mod:`opensqt.grid.slots` holds the pure slot transitions the engine
applies; :mod:`opensqt.grid.client_ids` builds and parses the deterministic client order ids.
"""

from opensqt.grid import slots
from opensqt.grid.client_ids import (
    ClientOrderIdCodec,
    ClientOrderIdError,
    ClientOrderIdParts,
    format_client_order_id,
    parse_client_order_id,
)
from opensqt.grid.config import GridConfig, GridConfigError, GridMode, widen_interval
from opensqt.grid.slots import SlotTransitionError
from opensqt.grid.strategy import Action, CancelOrder, CancelReason, PlaceOrder, Strategy

__all__ = [
    "Action",
    "CancelOrder",
    "CancelReason",
    "ClientOrderIdCodec",
    "ClientOrderIdError",
    "ClientOrderIdParts",
    "GridConfig",
    "GridConfigError",
    "GridMode",
    "PlaceOrder",
    "SlotTransitionError",
    "Strategy",
    "format_client_order_id",
    "parse_client_order_id",
    "slots",
    "widen_interval",
]
