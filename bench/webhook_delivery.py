"""Webhook delivery cost: CPU and wall time of N signed POSTs to a listener on 127.0.0.1, through the
worker's pooled client (``services.webhooks.sender.Sender``), as the delivery task sends them.

    .venv/bin/python bench/webhook_delivery.py            # 200 deliveries
    .venv/bin/python bench/webhook_delivery.py -n 1000

CPU is the process's (``time.process_time``: the listener's thread included). Before the pooled client,
each delivery built an ``httpx.AsyncClient`` and so a new TLS context (the CA bundle parsed again): 200
deliveries took 5.5 to 9.1 s of CPU (27 to 46 ms each, almost all in ``load_verify_locations``) and 9 to
24 s of wall time; through one ``Sender``, 0.7 to 1.1 s of CPU (3.4 to 5.6 ms each, the client's one TLS
context included) and 1 to 1.8 s (on a shared, busy machine; the listener closes every connection, HTTP/1.0).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engramdb.config import Settings  # noqa: E402
from engramdb.services.webhooks import delivery  # noqa: E402
from engramdb.services.webhooks.sender import Sender  # noqa: E402
from engramdb.webhooks import generate_secret  # noqa: E402
from tests.webhook_listener import Listener  # noqa: E402


async def run(count: int) -> None:
    listener = Listener()
    settings = Settings(webhook_timeout_s=5, webhook_allow_networks=["127.0.0.1/32"])
    row = {
        "payload": {"type": "webhook.test", "timestamp": "2026-01-01T00:00:00Z", "data": {"message": "bench"}},
        "secret": generate_secret(),
        "previous_secret": None,
        "previous_secret_expires_at": None,
        "event_id": uuid.uuid4(),
        "url": listener.url("/bench"),
    }
    try:
        started_cpu, started = time.process_time(), time.perf_counter()
        async with Sender(settings) as sender:  # made once per worker process: counted here
            for _ in range(count):
                attempt = await delivery._post(sender, row)
                assert attempt.ok, attempt
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    finally:
        listener.close()
    print(f"{count} deliveries: wall {wall:.2f} s, CPU {cpu:.2f} s ({1000 * cpu / count:.2f} ms CPU each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="deliveries to send")
    asyncio.run(run(parser.parse_args().n))


if __name__ == "__main__":
    main()
