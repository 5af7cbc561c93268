"""HTTP API of the gateway service."""

from fastapi import APIRouter

routers: list[APIRouter] = []
