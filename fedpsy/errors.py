"""Mapping errors to exit codes and readable messages at the CLI boundary."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from schemas.errors import FedpsyError

P = ParamSpec("P")
T = TypeVar("T")
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def cli_errors(func: Callable[P, T]) -> Callable[P, T]:
    """Run a command; a FedpsyError becomes a message on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except FedpsyError as exc:
            stderr.print(f"[bold red]error[/] {escape(f'[{exc.code}]')} {escape(exc.message)}")
            if exc.detail:
                stderr.print(exc.detail, markup=False)
            sys.stderr.flush()
            raise typer.Exit(exc.exit_code) from None

    return wrapper
