"""Stopping a training run cleanly: the first signal asks the loop to stop after the current step
(a checkpoint taken in the middle of a step would not resume exactly), a second one aborts at once.
"""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence

logger = logging.getLogger(__name__)


class StopRequest:
    """While entered (``with StopRequest(...) as stop:``), the given signals set ``stop.requested``;
    the loop checks it after each step. Only in the main thread of a single process (under torchrun
    the launcher handles signals): elsewhere it never fires.

    >>> with StopRequest() as stop:
    ...     stop.requested
    False
    """

    def __init__(self, signals: Sequence[signal.Signals] = (signal.SIGINT,), enabled: bool = True):
        self.signals = tuple(signals)
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous: dict[signal.Signals, object] = {}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        logger.info("%s: stopping after this step (press again to abort without saving)", name)

    def start(self) -> StopRequest:
        """Install the handlers (the previous ones are kept for :meth:`restore`)."""
        if self.enabled:
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def __enter__(self) -> StopRequest:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.restore()
