"""The callable the agent core gives log shipping to hand over one encoded batch.

``send(batch_bytes)`` returns once the batch is in Redis or in the on-disk spool, and raises
only when it could do neither; a batch it accepted counts as delivered.
"""

from __future__ import annotations

from collections.abc import Callable

Sender = Callable[[bytes], None]
