"""The typed candle-close subscribers: ``AsyncCloseSubscription`` and its generated sync twin ``CloseSubscription``."""

from ._async.subscription import AsyncCloseSubscription
from ._sync.subscription import CloseSubscription

__all__ = ["AsyncCloseSubscription", "CloseSubscription"]
