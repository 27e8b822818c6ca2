"""The driver's SIGINT handling, in process: the first Ctrl-C interrupts once, later ones are ignored, and a
driver that has finished its cleanup is not killed by the second signal that shells and ``timeout`` send to
its process group a moment later (it must exit 130, not die of the signal). A signal a process sends itself
is handled before ``os.kill`` returns to the Python code."""

from __future__ import annotations

import os
import signal

import pytest

from madminer_notebooks.driver.interrupt import STOP, stoppable


@pytest.fixture
def default_sigint():
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _interrupted_block(until_exit: bool) -> None:
    with pytest.raises(KeyboardInterrupt), stoppable(until_exit=until_exit):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # the second one, during the cleanup: ignored
    assert STOP.is_set()


def test_a_stopped_driver_ignores_the_signal_that_follows_its_cleanup(default_sigint):
    _interrupted_block(until_exit=True)
    os.kill(os.getpid(), signal.SIGINT)  # the process group's copy, after the cleanup: ignored as well
    # ignored by the OS, not by a Python handler: the interpreter's shutdown resets those to the default
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_in_a_kernel_the_previous_handler_comes_back(default_sigint):
    _interrupted_block(until_exit=False)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)


def test_a_block_that_was_not_stopped_restores_the_handler(default_sigint):
    with stoppable(until_exit=True):
        assert not STOP.is_set()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
