"""``fedpsy verify RESULT.json``: check a result's signed receipts and the coordinator's
signature (exit 0 valid, 1 altered, naming the place)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedpsy.errors import cli_errors
from schemas.errors import ErrorCode, FedpsyError


@cli_errors
def verify(
    result: Annotated[Path, typer.Argument(help="A result JSON (`fedpsy run … --json`).")],
    coordinator: Annotated[
        str | None,
        typer.Option(metavar="DIR_OR_URL", help="Check against the keys this coordinator pinned."),
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(help="A folder of keys instead: coordinator.pub and one SITE.pub per site."),
    ] = None,
) -> None:
    """Check a result's signed receipts (one per answering site, under the key pinned for
    it) and the coordinator's signature over the result: exit 0 with a summary when valid,
    1 naming the site or field that was altered."""
    # deferred: keys, signatures and the coordinator's store load only when verifying
    from fedpsy.trusted_keys import keys_from_coordinator, keys_from_dir, read_result
    from schemas.result_check import check_result

    if (coordinator is None) == (keys is None):
        raise FedpsyError("give --coordinator DIR_OR_URL or --keys DIR", code=ErrorCode.BAD_INPUT)
    trusted = keys_from_dir(keys) if keys is not None else keys_from_coordinator(str(coordinator))
    typer.echo(check_result(read_result(result), trusted))


__all__ = ["verify"]
