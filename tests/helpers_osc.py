"""The fake socket of the OSC server tests (test_osc.py, test_osc_fuzz.py): an :class:`OscApp`'s reply function
that decodes and keeps every reply."""
import threading

from pythonosc.osc_message import OscMessage


class Wire:
    """A fake socket: :meth:`send` (what an ``OscApp`` replies through) collects ``(address, args, to)`` of every
    reply; :meth:`wait` blocks for the n-th reply (its timeout is only a guard against a hang); :meth:`count` and
    :meth:`since` read the replies so far."""

    def __init__(self):
        self.replies, self.cond = [], threading.Condition()

    def send(self, data, to):
        m = OscMessage(data)
        with self.cond:
            self.replies.append((m.address, list(m.params), to))
            self.cond.notify_all()

    def wait(self, n, timeout=10.0):
        """The n-th reply (1-based), waiting for it if it has not come yet."""
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.replies) >= n, timeout), f"only {self.replies}"
            return self.replies[n - 1]

    def count(self):
        with self.cond:
            return len(self.replies)

    def since(self, n):
        """(address, args) of the replies after the first n."""
        with self.cond:
            return [(address, args) for address, args, _ in self.replies[n:]]
