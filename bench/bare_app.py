"""The baseline: a bare FastAPI app with nothing but the endpoints benchmarks compare to."""

from typing import Any

from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/echo")
async def echo(body: dict[str, Any]) -> dict[str, Any]:
    return body


@app.post("/raw")
async def raw(request: Request) -> Response:
    """Reads the whole body, as the federation endpoint must before verifying it."""
    body = await request.body()
    return Response(body[:16], media_type="application/octet-stream")
