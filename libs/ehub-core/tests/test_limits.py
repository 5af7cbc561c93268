"""ehub_core.limits: the body-limit ASGI layer on a bare ASGI app, and the text types.
(tests/test_edge.py runs the same against a real ``ehub serve`` process.)"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from ehub_core.limits import BodyLimit, MultilineText, PlainText

Message = dict[str, Any]


class Client:
    """Feeds request messages to an ASGI app and collects what it sends."""

    def __init__(self, *chunks: bytes, stall: bool = False, disconnect: bool = False) -> None:
        self.queue: list[Message] = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or stall}
            for i, c in enumerate(chunks)
        ]
        if disconnect:
            self.queue[-1]["more_body"] = True
            self.queue.append({"type": "http.disconnect"})
        self.stall = stall
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.queue:
            return self.queue.pop(0)
        await asyncio.Event().wait()  # stalls (or, once the body is done, waits forever)
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        return starts[0]["status"] if starts else None

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


def scope(path: str = "/v1/things", **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


class App:
    """Reads the whole body (as Starlette does: a disconnect is an exception), answers 200."""

    def __init__(self, read: bool = True) -> None:
        self.read = read
        self.called = False
        self.body = b""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        if self.read:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ConnectionError("client disconnected")  # Starlette: ClientDisconnect
                self.body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def test_a_declared_length_over_the_limit_is_413_before_the_app_runs():
    app, client = App(), Client(b"x" * 10)
    await BodyLimit(app, max_bytes=100)(scope(content_length="101"), client.receive, client.send)
    assert not app.called
    assert client.status == 413
    assert client.headers[b"content-type"] == b"application/problem+json"
    assert client.headers[b"connection"] == b"close"
    assert client.body["type"].endswith("/body-too-large") and client.body["max_bytes"] == 100


async def test_a_streamed_body_over_the_limit_is_413_and_the_apps_answer_is_dropped(caplog):
    app, client = App(), Client(b"x" * 60, b"x" * 60, b"x" * 60)
    with caplog.at_level(logging.INFO, "ehub.limits"):
        await BodyLimit(app, max_bytes=100)(
            scope(transfer_encoding="chunked"), client.receive, client.send
        )
    assert client.status == 413 and len(client.sent) == 2  # ours only
    assert app.body == b"x" * 60  # it never got past the limit
    assert "over the limit of 100 bytes" in caplog.text


async def test_a_path_may_have_its_own_limit():
    layer = BodyLimit(App(), max_bytes=100, paths={"/federation/v1/events": 1000})
    ok, big = Client(b"x" * 500), Client(b"x" * 500)
    await layer(scope("/federation/v1/events", content_length="500"), ok.receive, ok.send)
    await layer(scope("/v1/things", content_length="500"), big.receive, big.send)
    assert (ok.status, big.status) == (200, 413)


async def test_a_body_that_stalls_is_408_after_the_timeout():
    app, client = App(), Client(b"{", stall=True)
    started = asyncio.get_running_loop().time()
    await BodyLimit(app, timeout=0.2)(scope(content_length="10"), client.receive, client.send)
    waited = asyncio.get_running_loop().time() - started
    assert client.status == 408 and client.body["type"].endswith("/body-timeout")
    assert client.headers[b"connection"] == b"close"
    assert 0.15 < waited < 2


async def test_a_client_gone_mid_body_is_one_info_line_and_no_error(caplog):
    app, client = App(), Client(b"{", disconnect=True)
    with caplog.at_level(logging.INFO):
        await BodyLimit(app)(scope(content_length="10"), client.receive, client.send)
    assert client.sent == []
    records = [r for r in caplog.records if r.levelno >= logging.INFO and "ehub" in r.name]
    assert [r.levelname for r in records] == ["INFO"]
    assert "went away" in records[0].getMessage()


async def test_an_answer_before_the_body_was_read_closes_the_connection():
    app, client = App(read=False), Client(b"x" * 10)
    await BodyLimit(app)(scope(content_length="10"), client.receive, client.send)
    assert client.status == 200 and client.headers[b"connection"] == b"close"


async def test_a_body_read_whole_keeps_the_connection():
    app, client = App(), Client(b"x" * 10)
    await BodyLimit(app)(scope(content_length="10"), client.receive, client.send)
    assert client.status == 200 and b"connection" not in client.headers


async def test_requests_without_a_body_pass_straight_through():
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(receive)

    client = Client(b"")
    await BodyLimit(app)(scope(), client.receive, client.send)
    assert seen == [client.receive]


async def test_an_invalid_content_length_is_400():
    app, client = App(), Client(b"")
    await BodyLimit(app)(scope(content_length="12abc"), client.receive, client.send)
    assert client.status == 400 and not app.called


class Note(BaseModel):
    name: PlainText = Field(max_length=50)
    text: MultilineText = ""


@pytest.mark.parametrize(
    "bad",
    ["a\x00b", "\x1b[31mred", "a\tb", "a\nb", "\x7f", "\x9b2J", "\u202egnp.exe", "\ud800"],
)
def test_one_line_text_refuses_control_characters(bad):
    with pytest.raises(ValidationError) as info:
        Note(name=bad)
    error = info.value.errors()[0]
    assert error["loc"] == ("name",)
    # pydantic refuses an unpaired surrogate itself ("unable to parse ... unicode string")
    assert "control characters" in error["msg"] or "unicode" in error["msg"]


def test_multiline_text_keeps_tabs_and_line_breaks_only():
    assert Note(name="Li Lei 李雷", text="line 1\r\n\tline 2 🦞").text.endswith("🦞")
    for bad in ("\x00", "\x1b[2J", "\x08", "\u2066"):
        with pytest.raises(ValidationError):
            Note(name="x", text=f"a{bad}b")
