"""The eraser registry: every place that holds a seeker registers how to erase them.

``DELETE /v1/seekers/{seeker_id}`` first deletes the row from the system of record
(with its operation-log record in the same transaction), then runs every registered
eraser. Another part of the service, such as a push queue, adds its own with
``app.state.erasers.register(name, eraser)``. An eraser takes the seeker id, removes
everything it holds of that seeker, and must succeed again when the seeker is already
gone, because a failed erasure is retried by repeating the whole delete.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

Eraser = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class EraserOutcome:
    """The result of one eraser for one seeker; ``error`` names the exception type only."""

    name: str
    ok: bool
    error: str | None = None


class EraserRegistry:
    """Named erasers, run in registration order."""

    def __init__(self) -> None:
        self._erasers: dict[str, Eraser] = {}
        self._lock = threading.Lock()

    def register(self, name: str, eraser: Eraser, *, replace: bool = False) -> None:
        """Add an eraser; a second one under the same name raises ValueError unless ``replace``.

        A replaced eraser keeps its place in the order.
        """
        with self._lock:
            if name in self._erasers and not replace:
                raise ValueError(f"an eraser named {name!r} is already registered")
            self._erasers[name] = eraser

    def names(self) -> list[str]:
        """Return the registered names in the order they run."""
        with self._lock:
            return list(self._erasers)

    def erase(self, seeker_id: str) -> list[EraserOutcome]:
        """Run every eraser for ``seeker_id``, also after one fails; return each outcome.

        A failure is logged with the eraser name, the seeker id and the exception
        type. The exception text is not logged, because it could quote stored data.
        """
        with self._lock:
            erasers = list(self._erasers.items())
        outcomes = []
        for name, eraser in erasers:
            try:
                eraser(seeker_id)
            except Exception as err:  # every eraser must run and report
                logger.error(
                    "eraser %r failed for seeker %r: %s", name, seeker_id, type(err).__name__
                )
                outcomes.append(EraserOutcome(name, ok=False, error=type(err).__name__))
            else:
                outcomes.append(EraserOutcome(name, ok=True))
        return outcomes
