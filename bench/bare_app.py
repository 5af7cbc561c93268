"""The baseline: a bare FastAPI app with nothing but the endpoints benchmarks compare to."""

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/echo")
async def echo(body: dict[str, Any]) -> dict[str, Any]:
    return body
