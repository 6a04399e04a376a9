"""The ClientApp of a simulated run: each simulated SuperNode relays to one real site.

Flower's simulation numbers its SuperNodes by ``partition-id``; SuperNode ``i`` relays
every message to ``links[i]``, whose site runs the step through its own gate. The app is
built per run and pickled into the simulation's worker processes with its links.
Import after :func:`schemas.training.env.flower_environment`.
"""

from __future__ import annotations

from collections.abc import Sequence

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from coordinator.training.links import SiteLink
from schemas.training.protocol import handle

PARTITION = "partition-id"


def relay_app(links: Sequence[SiteLink]) -> ClientApp:
    """A ClientApp whose SuperNode ``i`` answers from ``links[i]``."""
    chosen = list(links)
    app = ClientApp()

    def serve(message: Message, context: Context) -> Message:
        link = chosen[int(context.node_config[PARTITION])]
        return handle(message, link.site, link.run)

    app.train()(serve)
    app.evaluate()(serve)
    return app


__all__ = ["relay_app"]
