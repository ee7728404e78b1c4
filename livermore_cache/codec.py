"""Candles to and from their JSON: one encoder, and one decoder for stored members and events alike.

The decoding rule, the same for reads, backfill and subscriptions: a member is
decoded as the model asked for. Asked for ``UnifiedCandle`` (or a subclass), a
member that has no ``exchange`` field is in the plain Candle schema (written by
``add_candle`` here or ``addCandle`` in the Node service) and comes back as a
``Candle``, since it has no versioned fields to return. Any other member that
is not a valid candle of the model is refused: a read raises ``ValidationError``
naming the key, a subscriber counts the message as malformed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeVar

import msgspec

from .errors import ValidationError
from .models import Candle, UnifiedCandle

__all__ = ["decode_candle", "decode_members", "encode_candle"]

CandleT = TypeVar("CandleT", bound=Candle)

_ENCODER: Final = msgspec.json.Encoder()
_DECODERS: dict[type[Candle], msgspec.json.Decoder[Any]] = {
    Candle: msgspec.json.Decoder(Candle),
    UnifiedCandle: msgspec.json.Decoder(UnifiedCandle),
}


class _ExchangeField(msgspec.Struct):
    """Only a member's ``exchange`` field: tells the plain Candle schema from a broken UnifiedCandle."""

    exchange: Any = msgspec.UNSET


_EXCHANGE_PROBE: Final = msgspec.json.Decoder(_ExchangeField)


def encode_candle(candle: Candle) -> bytes:
    """The candle's JSON: the Node service's field names and order, unset optionals left out."""
    return _ENCODER.encode(candle)


def _decoder(model: type[Candle]) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(model)
    if decoder is None:
        decoder = _DECODERS[model] = msgspec.json.Decoder(model)
    return decoder


def decode_candle(data: bytes | str, model: type[CandleT]) -> CandleT | Candle:
    """One member or message as ``model`` (see the module docstring for the fallback to ``Candle``).

    Raises ``msgspec.ValidationError`` (JSON, but not a valid candle) or
    ``msgspec.DecodeError`` (not JSON).
    """
    try:
        return _decoder(model).decode(data)  # type: ignore[no-any-return]
    except msgspec.ValidationError:
        if not issubclass(model, UnifiedCandle) or _EXCHANGE_PROBE.decode(data).exchange is not msgspec.UNSET:
            raise
    return _DECODERS[Candle].decode(data)  # type: ignore[no-any-return]


def decode_members(members: Iterable[bytes | str], model: type[CandleT], key: str) -> list[CandleT | Candle]:
    """Stored members decoded by ``decode_candle``; a member that is not a valid candle raises, naming the key."""
    out: list[CandleT | Candle] = []
    for member in members:
        try:
            out.append(decode_candle(member, model))
        except msgspec.ValidationError as error:
            raise ValidationError(f"member of {key}", member, f"is not a valid {model.__name__} ({error})") from None
        except msgspec.DecodeError as error:
            raise ValidationError(f"member of {key}", member, f"is not valid JSON ({error})") from None
    return out
