"""The demo's verification step: a result written to disk, checked against the sites'
receipts and the coordinator's signature, and its methods paragraph."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from coordinator.service import Coordinator
from fedpsy.methods_cli import methods_text
from fedpsy.trusted_keys import keys_from_coordinator
from schemas.result_check import check_result


def receipt_step(out: Console, coord: Coordinator, request: dict[str, Any], folder: Path) -> None:
    """Run ``request``, save its result, verify it and print its methods paragraph."""
    out.rule("7. a verifiable result and its methods paragraph")
    result = asyncio.run(coord.run(request))
    path = folder / "result.json"
    path.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    root = str(coord.dir.root)
    data = json.loads(path.read_text(encoding="utf-8"))
    out.print(f"[dim]$ fedpsy verify {escape(str(path))} --coordinator {escape(root)}[/]")
    out.print(check_result(data, keys_from_coordinator(root)))
    out.print("\n[bold]Methods[/]")
    out.print(escape(methods_text(root, None, request, result)))


__all__ = ["receipt_step"]
