"""Brute-force protection for logins: failures per user and per client address slow both down.

After ``max_failures`` failures within the window, each further attempt must wait, doubling from
one second up to the window. State lives in the process that serves HTTP (one per installation),
so it is lost on restart, which only resets the waiting, never lets more guesses through at once.
"""

import threading
import time

from kaapana.errors import TooManyRequests

WINDOW_SECONDS = 15 * 60
ADDRESS_FACTOR = 4


class LoginThrottle:
    def __init__(self, *, max_failures: int, window: float = WINDOW_SECONDS) -> None:
        self._limits = {"user": max_failures, "address": max_failures * ADDRESS_FACTOR}
        self._window = window
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self._window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def check(self, *, username: str, address: str) -> None:
        """Raise ``TooManyRequests`` while the user or the address must wait."""
        now = time.monotonic()
        with self._lock:
            for kind, value in (("user", username.lower()), ("address", address)):
                times = self._recent((kind, value), now)
                excess = len(times) - self._limits[kind]
                if excess < 0:
                    continue
                wait = min(2.0**excess, self._window) - (now - times[-1])
                if wait > 0:
                    raise TooManyRequests(
                        f"too many failed logins for this {kind}; try again in {int(wait) + 1} s",
                        retry_after=int(wait) + 1,
                    )

    def failed(self, *, username: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (("user", username.lower()), ("address", address)):
                self._recent(key, now)
                self._failures.setdefault(key, []).append(now)

    def succeeded(self, *, username: str) -> None:
        with self._lock:
            self._failures.pop(("user", username.lower()), None)


__all__ = ["LoginThrottle"]
