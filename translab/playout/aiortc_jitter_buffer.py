"""aiortc 1.16's audio ``JitterBuffer`` (``aiortc/jitterbuffer.py``), re-stated on plain sequence
numbers so the receiver can run it without RTP objects.

The behaviour, kept exactly (tests compare it with aiortc's own class):

- A ring of ``capacity`` slots (16 for audio) indexed by ``seq % capacity``; ``origin`` is the oldest
  sequence number still wanted.
- A frame is released only when ``prefetch`` (4) complete frames follow it *contiguously* from
  ``origin``: with one packet per frame, packet k is released when k+1..k+4 are all present. One
  frame is released per arriving packet at most.
- A gap (a lost packet) therefore blocks release. Packets pile up until one arrives ``capacity``
  or more ahead of ``origin``; then just enough packets are dropped from the front to make room
  (``smart_remove``): for a packet ``capacity`` ahead that is one packet (plus the lost one when it
  reaches it). So a single loss drops the ~4 frames in front of the gap and leaves the buffer
  holding ~14 frames for good: the extra latency never drains (aiortc issue #543).
- A packet older than ``origin`` (late) is dropped unless it is 100 or more behind, which resets
  the buffer.
"""

from __future__ import annotations

MAX_MISORDER = 100


def _u16(x: int) -> int:
    return x & 0xFFFF


class AiortcJitterBuffer:
    """Audio jitter buffer of aiortc 1.16, one packet per frame. Sequence numbers are uint16."""

    def __init__(self, capacity: int = 16, prefetch: int = 4) -> None:
        if capacity & (capacity - 1):
            raise ValueError("capacity must be a power of 2")
        self.capacity = capacity
        self.prefetch = prefetch
        self.origin: int | None = None
        self.slots: list[int | None] = [None] * capacity  # seq stored per slot
        self.dropped: list[int] = []  # packets removed without being released (flushed or late)

    def add(self, seq: int) -> int | None:
        """Insert packet ``seq`` (uint16); return the sequence number released, if any."""
        seq = _u16(seq)
        if self.origin is None:
            self.origin = seq
            delta = misorder = 0
        else:
            delta = _u16(seq - self.origin)
            misorder = _u16(self.origin - seq)
        if misorder < delta:
            if misorder >= MAX_MISORDER:
                self._remove(self.capacity)
                self.origin = seq
                delta = misorder = 0
            else:
                self.dropped.append(seq)
                return None
        if delta >= self.capacity:
            excess = delta - self.capacity + 1
            if self._smart_remove(excess):
                self.origin = seq
        self.slots[seq % self.capacity] = seq
        return self._release()

    def _release(self) -> int | None:
        assert self.origin is not None
        frames = 0
        first: int | None = None
        prev: int | None = None
        for count in range(self.capacity):
            s = self.slots[(self.origin + count) % self.capacity]
            if s is None:
                break
            if prev is not None:
                # a new timestamp: the previous frame is complete
                if first is None:
                    first = prev
                frames += 1
                if frames >= self.prefetch:
                    self._remove(1)
                    return first
            prev = s
        return None

    def _remove(self, count: int) -> None:
        assert self.origin is not None
        for _ in range(count):
            pos = self.origin % self.capacity
            self.slots[pos] = None
            self.origin = _u16(self.origin + 1)

    def _smart_remove(self, count: int) -> bool:
        assert self.origin is not None
        for i in range(self.capacity):
            pos = self.origin % self.capacity
            s = self.slots[pos]
            if s is not None:
                # one packet per frame: every stored packet starts a new timestamp, so aiortc's
                # "same timestamp as the last removed" test never holds past ``count``
                if i >= count:
                    break
                self.dropped.append(s)
            self.slots[pos] = None
            self.origin = _u16(self.origin + 1)
            if i == self.capacity - 1:
                return True
        return False
