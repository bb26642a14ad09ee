"""How many build messages wait in the broker's queue (Redis or RabbitMQ), for `codenv status`."""

from __future__ import annotations

from typing import Any

CONNECT_TIMEOUT_SECONDS = 3.0


def queue_length(broker_url: str, queue: str) -> int:
    """The messages waiting in `queue`: a passive declare, which creates nothing. A queue the
    broker does not know yet (no build was ever sent to it, or Redis's list is empty) holds
    none. Raises kombu's errors when the broker cannot be reached."""
    from kombu.connection import Connection

    # Any: kombu's Connection has no annotations (the rest of kombu has).
    connection: Any = Connection(broker_url, connect_timeout=CONNECT_TIMEOUT_SECONDS)  # type: ignore[no-untyped-call]
    with connection:
        connection.ensure_connection(max_retries=1)
        try:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
        except connection.channel_errors:
            return 0
        return int(declared.message_count)
