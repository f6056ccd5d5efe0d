"""The suite's own selection rules: ``-m "not postgres"`` leaves out every test that needs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run inside the collecting pytest: what each selected test would need.
PLUGIN = """
import json, os

def pytest_collection_finish(session):
    rows = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        rows.append({
            "id": item.nodeid,
            "fixtures": list(getattr(item, "fixturenames", ())),
            "params": [str(v) for v in (callspec.params.values() if callspec else ())],
        })
    with open(os.environ["MARKS_OUT"], "w") as out:
        json.dump(rows, out)
"""


def collect(tmp_path: Path, *args: str) -> list[dict[str, object]]:
    (tmp_path / "marks_probe.py").write_text(PLUGIN)
    out = tmp_path / "items.json"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "MARKS_OUT": str(out)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "marks_probe",
            "-p",
            "no:cacheprovider",
            *args,
            "tests",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return list(json.loads(out.read_text()))


def test_not_postgres_selects_nothing_that_needs_the_server(tmp_path: Path) -> None:
    selected = collect(tmp_path, "-m", "not postgres")
    assert len(selected) > 100
    needs = [
        row["id"]
        for row in selected
        if "postgres_factory" in row["fixtures"] or "postgres" in row["params"]
    ]
    assert needs == []
    # And the other half is really there: both backends of a parametrised test.
    everything = {row["id"] for row in collect(tmp_path)}
    assert "tests/test_migrations.py::test_upgrade_again_changes_nothing[postgres]" in everything
    assert "tests/test_migrations.py::test_upgrade_again_changes_nothing[sqlite]" in everything
