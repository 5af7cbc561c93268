"""Run the real outbox relay, but stop dead between publish and mark-as-sent.

The test SIGKILLs this process once it prints PUBLISHED, which is exactly the crash
window the outbox must survive. Usage: relay_crash.py DATABASE_URL BOOTSTRAP
"""

import asyncio
import sys

from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.bus import KafkaBus
from ehub_core.db import Database
from ehub_core.outbox import OutboxRelay


class StallAfterPublish(OutboxRelay):
    async def _mark_sent(self, session: AsyncSession, ids: list[str]) -> None:
        print("PUBLISHED", " ".join(ids), flush=True)
        await asyncio.sleep(3600)


async def main(url: str, bootstrap: str) -> None:
    bus = KafkaBus(bootstrap)
    relay = StallAfterPublish(Database(url), bus)
    await relay.publish_pending()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
