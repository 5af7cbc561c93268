"""Print (or check) the settings tables of docs/operations.md from the settings classes.

uv run python scripts/gen_settings_doc.py           # rewrite the tables in place
uv run python scripts/gen_settings_doc.py --check   # exit 1 if the doc is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic_settings import BaseSettings

from ehub_catalog.settings import CatalogSettings
from ehub_core.settings import CoreSettings
from ehub_customs.settings import CustomsSettings
from ehub_gateway.settings import GatewaySettings
from ehub_logistics.settings import LogisticsSettings

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def _rows(cls: type[BaseSettings], skip: set[str]) -> list[str]:
    out = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        default = field.get_default(call_default_factory=True)
        shown = "" if default is None else str(default)
        desc = (field.description or "").replace("|", "\\|")
        out.append(f"| `EHUB_{name.upper()}` | `{shown}` | {desc} |")
    return out


def render() -> str:
    core = set(CoreSettings.model_fields)
    parts = ["All services:", "", *_rows(CoreSettings, set())]
    for title, cls in (
        ("Gateway only", GatewaySettings),
        ("Catalog only", CatalogSettings),
        ("Customs only", CustomsSettings),
        ("Logistics only", LogisticsSettings),
    ):
        parts += ["", f"{title}:", "", *_rows(cls, core)]
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{render()}\n{END}{tail}"
    if args.check:
        if new != text:
            print("docs/operations.md settings tables are stale: run scripts/gen_settings_doc.py")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
