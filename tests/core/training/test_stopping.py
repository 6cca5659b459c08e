"""StopRequest (core/training/stopping.py): the first signal asks for a stop, the second aborts,
and the previous handlers come back."""
from __future__ import annotations

import os
import signal

import pytest

from ganstyle.core.training.stopping import StopRequest


def test_first_signal_requests_a_stop_the_second_aborts_and_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest((signal.SIGINT, signal.SIGTERM)) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_disabled_installs_nothing():
    before = signal.getsignal(signal.SIGINT)
    with StopRequest(enabled=False):
        assert signal.getsignal(signal.SIGINT) is before
