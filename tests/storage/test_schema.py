"""The committed generated module and its stub are what `make proto` produces from storage/ateapi.proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storage.ateapi_pb2 import Actor, Worker

STORAGE = Path(__file__).resolve().parents[2] / "storage"


@pytest.mark.process
def test_committed_ateapi_pb2_matches_the_proto(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{STORAGE}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(STORAGE / "ateapi.proto"),
        ],
        check=True,
    )
    for name in ("ateapi_pb2.py", "ateapi_pb2.pyi"):
        generated = (tmp_path / name).read_bytes()
        committed = (STORAGE / name).read_bytes()
        assert generated == committed, f"storage/{name} is stale: run `make proto` and commit it"


def test_field_names_and_numbers_are_the_go_servers():
    def fields(message):
        return [(f.name, f.number) for f in message.DESCRIPTOR.fields]

    assert Actor.DESCRIPTOR.full_name == "ateapi.Actor"
    assert fields(Actor) == [
        ("actor_id", 1),
        ("version", 2),
        ("actor_template_namespace", 3),
        ("actor_template_name", 4),
        ("status", 5),
        ("ateom_pod_namespace", 6),
        ("ateom_pod_name", 7),
        ("ateom_pod_ip", 8),
        ("last_snapshot", 9),
        ("in_progress_snapshot", 10),
    ]
    assert dict(Actor.Status.items()) == {
        "STATUS_UNSPECIFIED": 0,
        "STATUS_RESUMING": 1,
        "STATUS_RUNNING": 2,
        "STATUS_SUSPENDING": 3,
        "STATUS_SUSPENDED": 4,
    }
    assert fields(Worker) == [
        ("worker_namespace", 1),
        ("worker_pool", 2),
        ("worker_pod", 3),
        ("actor_namespace", 4),
        ("actor_template", 5),
        ("actor_id", 6),
        ("ip", 7),
        ("version", 8),
    ]


@pytest.mark.process
def test_storage_imports_without_django():
    code = "import sys, storage, storage.ateapi_pb2; assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
