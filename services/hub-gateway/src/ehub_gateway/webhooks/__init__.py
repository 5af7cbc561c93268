"""Partner webhooks (Standard Webhooks): endpoints, the delivery log, signed delivery.

- ``service.emit`` writes delivery rows in the caller's transaction;
- ``worker.WebhookWorker`` sends them, signed, in order per endpoint and subject;
- ``api`` is ``/v1/webhooks`` (see docs/webhooks.md).
"""
