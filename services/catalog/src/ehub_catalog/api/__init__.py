"""HTTP API of the catalog service."""

from fastapi import APIRouter

routers: list[APIRouter] = []
