"""`ehub partners` as an operator runs it: add prints a key once, list never shows it,
rotate and revoke change what the stored keys allow; bad input exits 2 and writes nothing."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path


def ehub(var: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHUB_")}
    env["EHUB_HUB_ID"] = "CN"
    return subprocess.run(
        [sys.executable, "-m", "ehub_cli", "partners", *args, "--var-dir", str(var)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rows(var: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(var / "cn" / "gateway.db") as conn:
        return conn.execute(sql).fetchall()


def test_partner_lifecycle_through_the_cli(tmp_path: Path) -> None:
    var = tmp_path / "var"
    added = ehub(var, "add", "Tmall Global", "--role", "marketplace")
    assert added.returncode == 0, added.stderr
    key = re.search(r"key\s+(ek_live_\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    partner = re.search(r"partner (prt_\w+)", added.stdout).group(1)  # type: ignore[union-attr]
    key_id = key.split("_")[2]
    listed = ehub(var, "list")
    assert partner in listed.stdout and key_id in listed.stdout
    assert key.split("_", 3)[3] not in listed.stdout  # the secret is never shown again
    assert rows(var, "SELECT revoked_at, expires_at FROM partner_keys") == [(None, None)]

    rotated = ehub(var, "rotate", partner, "--grace", "60")
    assert rotated.returncode == 0, rotated.stderr
    assert len(rows(var, "SELECT id FROM partner_keys")) == 2
    assert rows(var, f"SELECT expires_at IS NOT NULL FROM partner_keys WHERE id = '{key_id}'") == [
        (1,)
    ]

    revoked = ehub(var, "revoke", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert rows(var, f"SELECT revoked_at IS NOT NULL FROM partner_keys WHERE id = '{key_id}'") == [
        (1,)
    ]


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    var = tmp_path / "var"
    assert ehub(var, "add", "Someone", "--role", "seller").returncode == 0
    before = rows(var, "SELECT count(*) FROM partners")
    for args in (
        ("add", "X", "--role", "king"),
        ("add", "X", "--role", "seller", "--scopes", "orders:nuke"),
        ("rotate", "prt_nobody"),
        ("revoke", "000000000000"),
    ):
        result = ehub(var, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error:"), result.stderr
    assert rows(var, "SELECT count(*) FROM partners") == before
