"""The scope in which SIGINT and SIGTERM are the runner's to handle (a run's, a fleet's): installed on entry in
the main thread, the previous handlers put back on exit. What a signal does is the subclass's ``_on_signal``."""
from __future__ import annotations

import signal
import threading
from typing import Any


class SignalScope:
    def __init__(self) -> None:
        self.signal = ""  # the first signal's name, once one arrived
        self._old: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # Python delivers signals to the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        raise NotImplementedError
