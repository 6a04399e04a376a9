"""``fedpsy sandbox``: real nodes on loopback ports, JSON Lines out, the worst exit status."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from fedpsy.cli import app


def write_site(path: Path, n: int, seed: int, prefix: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "person_id": [f"{prefix}{i}" for i in range(n)],
            "age": rng.uniform(18, 70, n).round(1),
            "madrs_total": rng.integers(5, 45, n),
        }
    )
    frame.to_csv(path, index=False)
    return frame


def test_sandbox_runs_requests_in_order(tmp_path: Path) -> None:
    a = write_site(tmp_path / "a.csv", 40, 1, "A")
    b = write_site(tmp_path / "b.csv", 25, 2, "B")
    pooled = pd.concat([a, b])
    (tmp_path / "r1.json").write_text(
        json.dumps({"analysis": "summary", "variables": ["madrs_total"]})
    )
    (tmp_path / "r2.json").write_text(
        json.dumps(
            {
                "analysis": "count",
                "cohort": {
                    "all": [
                        {
                            "var": "age",
                            "op": ">",
                            "value": float(b["age"].nlargest(3).min()) - 1e-6,
                        },
                        {"var": "site", "op": "==", "value": "b"},
                    ]
                },
            }
        )
    )
    result = CliRunner().invoke(
        app,
        [
            "sandbox",
            "--site",
            f"a={tmp_path / 'a.csv'}",
            "--site",
            f"b={tmp_path / 'b.csv'}",
            str(tmp_path / "r1.json"),
            str(tmp_path / "r2.json"),
        ],
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2
    first, second = lines
    assert first["status"] == "ok"
    summary = first["result"]["variables"]["madrs_total"]
    assert summary["mean"] == pooled["madrs_total"].mean()
    assert first["sites"] == {"a": {"n": 40}, "b": {"n": 25}}
    assert second["status"] == "refused"  # three persons: below the minimum cohort
    assert second["reason"]["sites"] == {"b": "cohort_too_small"}
    assert result.exit_code == 3  # the worst status of the run


def test_sandbox_bad_site_argument(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("{}")
    result = CliRunner().invoke(app, ["sandbox", "--site", "nofile", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert "NAME=FILE.csv" in result.output
