"""Candles to and from their JSON: one encoder, and one decoder for stored members and events alike.

The decoding rule, the same for reads, backfill and subscriptions: a member is
decoded as the model asked for. Asked for ``UnifiedCandle`` (or a subclass), a
member that has no ``exchange`` field is in the plain Candle schema (written by
``add_candle`` here or ``addCandle`` in the Node service) and comes back as a
``Candle``, since it has no versioned fields to return. Any other member that
is not a valid candle of the model is refused: a read raises ``ValidationError``
naming the key, a subscriber counts the message as malformed.

One widening, for members the Node service's schema accepts: its
``sequenceNum`` is any non-negative integer *JavaScript number*, which it may
write as ``1e+21`` or ``9007199254740993``. Such a member is read with that
sequence as a Python int (exact up to 2**53 - 1; above, the double JavaScript
holds), and the script compares it as JavaScript does. A candle read that way
cannot be written back (writes refuse sequences above 2**53 - 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final, TypeVar

import msgspec

from .errors import ValidationError
from .models import MAX_SEQUENCE_NUM, Candle, UnifiedCandle

__all__ = ["decode_candle", "decode_members", "encode_candle"]

CandleT = TypeVar("CandleT", bound=Candle)

_ENCODER: Final = msgspec.json.Encoder()
_DECODERS: dict[type[Candle], msgspec.json.Decoder[Any]] = {
    Candle: msgspec.json.Decoder(Candle),
    UnifiedCandle: msgspec.json.Decoder(UnifiedCandle),
}


class _VersionFields(msgspec.Struct, rename="camel"):
    """Only a member's versioned fields: tells the plain Candle schema, and a wide sequence, from a broken member."""

    exchange: Any = msgspec.UNSET
    sequence_num: Any = msgspec.UNSET


_VERSION_PROBE: Final = msgspec.json.Decoder(_VersionFields)
_AS_DICT: Final = msgspec.json.Decoder(dict[str, Any])


def _javascript_integer(value: object) -> int | None:
    """A non-negative integer JavaScript number that ``UnifiedCandle`` refuses (a float form, or above 2**53 - 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    number = int(value)
    if number > MAX_SEQUENCE_NUM:
        return int(float(number))  # the double JavaScript reads for it
    return number if isinstance(value, float) else None


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
        if not issubclass(model, UnifiedCandle):
            raise
        fields = _VERSION_PROBE.decode(data)
        if fields.exchange is msgspec.UNSET:
            return _DECODERS[Candle].decode(data)  # type: ignore[no-any-return]
        sequence = _javascript_integer(fields.sequence_num)
        if sequence is None:
            raise
    # a wide sequence: decode without it, then set it past the write-side bound (see the module docstring)
    members = _AS_DICT.decode(data)
    members["sequenceNum"] = None
    candle = msgspec.convert(members, model)
    msgspec.structs.force_setattr(candle, "sequence_num", sequence)
    return candle


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
