"""Split a byte stream (TCP reads) into GB/T 26875.3 frames.

Reads may end anywhere and carry several frames; between frames there may be garbage
(line noise, another vendor's protocol). The splitter resynchronises on the next `@@`:
a candidate whose declared length is over 1024 or whose `##` is not where the length
says is not a frame, and only its first byte is skipped (a real frame may start inside).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.protocols.gb26875.frame import (
    END,
    HEADER_LEN,
    MAX_DATA_LEN,
    OVERHEAD,
    START,
    Frame,
    FrameError,
    declared_length,
    decode_frame,
)


@dataclass(slots=True)
class StreamStats:
    """What the splitter skipped: bytes that were no frame, and candidates rejected."""

    skipped_bytes: int = 0
    oversize: int = 0
    bad_end: int = 0


class FrameSplitter:
    """Feed bytes, get decoded frames or the errors of frames whose layout held.

    `feed` never raises: a well-delimited frame with a bad checksum or unknown command
    comes out as a `FrameError` (carrying the frame, to deny it); everything else that is
    not a frame is skipped and counted in `stats`.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.stats = StreamStats()

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Append `data` and return every complete frame (or frame error) now available."""
        buf = self._buf
        buf += data
        out: list[Frame | FrameError] = []
        while True:
            start = buf.find(START)
            if start < 0:
                # Keep a trailing '@': it may be the first half of the next start.
                keep = 1 if buf.endswith(b"@") else 0
                self._skip(len(buf) - keep)
                break
            if start:
                self._skip(start)
            if len(buf) < HEADER_LEN:
                break
            length = declared_length(buf)
            if length > MAX_DATA_LEN:
                self.stats.oversize += 1
                self._skip(1)
                continue
            total = OVERHEAD + length
            if len(buf) < total:  # at most 1053 bytes are ever held
                break
            if buf[total - 2 : total] != END:
                self.stats.bad_end += 1
                self._skip(1)
                continue
            raw = bytes(buf[:total])
            del buf[:total]
            try:
                out.append(decode_frame(raw))
            except FrameError as exc:
                out.append(exc)
        return out

    def pending(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    def _skip(self, n: int) -> None:
        if n > 0:
            del self._buf[:n]
            self.stats.skipped_bytes += n
