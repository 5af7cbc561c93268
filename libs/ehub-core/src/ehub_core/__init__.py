"""ehub shared core: the mechanisms every hub service uses exactly once.

Settings, database, migrations, outbox/inbox, event bus, embedded broker, telemetry,
problem+json errors and the service application factory live here so that the four
services share one implementation of each.
"""

__version__ = "0.1.0"
