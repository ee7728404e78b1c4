"""What the sync and asyncio code truly does differently (hand-written): ``aio`` and ``sync``, one module each.

Everything else of the two facades is one source, ``_async``, and its generated twin ``_sync``.
"""
