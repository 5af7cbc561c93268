"""The committed generated code is exactly what proto/ generates, and the contracts keep
their promises (money is never a float, imports resolve inside ehub_core)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

from google.protobuf.descriptor import Descriptor, FieldDescriptor

import ehub_core.proto.ehub.v1 as v1

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "libs" / "ehub-core" / "src" / "ehub_core" / "proto" / "ehub"


def test_regenerating_the_proto_code_gives_no_diff():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, f"stale generated code:\n{result.stderr}"


def test_every_proto_file_has_committed_python_and_stubs():
    for proto in (ROOT / "proto" / "ehub" / "v1").glob("*.proto"):
        for suffix in ("_pb2.py", "_pb2.pyi"):
            assert (GENERATED / "v1" / (proto.stem + suffix)).is_file(), proto.name


def test_generated_code_imports_only_through_ehub_core():
    for path in GENERATED.rglob("*_pb2.py*"):
        text = path.read_text()
        assert "from ehub.v1 import" not in text and "import ehub.v1" not in text, path.name


def _messages() -> list[Descriptor]:
    found: list[Descriptor] = []
    for info in pkgutil.iter_modules(v1.__path__):
        module = importlib.import_module(f"{v1.__name__}.{info.name}")
        pending = list(module.DESCRIPTOR.message_types_by_name.values())
        while pending:
            message = pending.pop()
            found.append(message)
            pending.extend(message.nested_types)
    return found


def test_no_contract_field_is_a_float():
    floats = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}
    messages = _messages()
    assert len(messages) > 20
    offenders = [f"{m.full_name}.{f.name}" for m in messages for f in m.fields if f.type in floats]
    assert offenders == []


def test_money_is_a_decimal_string_and_currency_code():
    [money] = [m for m in _messages() if m.full_name == "ehub.v1.Money"]
    assert [(f.name, f.type) for f in money.fields] == [
        ("amount", FieldDescriptor.TYPE_STRING),
        ("currency", FieldDescriptor.TYPE_STRING),
    ]


def test_check_reports_a_stale_or_extra_file(tmp_path):
    script = [sys.executable, str(ROOT / "scripts" / "gen_proto.py")]
    subprocess.run([*script, "--out", str(tmp_path)], check=True, capture_output=True, cwd=ROOT)
    stub = tmp_path / "ehub" / "v1" / "envelope_pb2.pyi"
    stub.write_text(stub.read_text() + "# edited by hand\n")
    (tmp_path / "ehub" / "v1" / "old_pb2.py").write_text("")
    result = subprocess.run(
        [*script, "--out", str(tmp_path), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 1
    assert "stale: v1/envelope_pb2.pyi" in result.stderr
    assert "stale: v1/old_pb2.py" in result.stderr
