"""A dataset file's bytes in spans of whole lines, hashed as they are read.

Spans are cut after a newline, so each span's first line is known exactly: the validator hands a
span to polars whole, or splits it in halves to find the line a problem is on.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

import numpy as np

from shared_tasks.validation.schema import CSV_ENCODING

BLOCK_BYTES = 4 << 20
# No record of this schema comes near this; a longer line is refused instead of held in memory.
LONGEST_LINE_BYTES = 16 << 20


@dataclass
class Span:
    """Whole lines of a file: their bytes, and where they start."""

    data: bytes
    offset: int
    newlines: int  # b"\n" before it in the file (the line an undecodable byte is reported on)
    count: int  # b"\n" in it
    line: int = 0  # the physical line it starts on, as csv counts them (\r, \n and \r\n end one)


class LineTooLong(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class LineReader:
    """A file's bytes in spans of whole lines, hashed (md5) in another thread as they are read."""

    def __init__(self, handle: IO[bytes], hashing: ThreadPoolExecutor) -> None:
        self._handle, self._hashing = handle, hashing
        self._digest = hashlib.md5(usedforsecurity=False)
        self._hashed: Future[None] | None = None
        self._pending = b""
        self.eof = False
        self.offset = 0
        self.newlines = 0

    def _read(self) -> bytes:
        chunk = self._handle.read(BLOCK_BYTES)
        if not chunk:
            self.eof = True
            return chunk
        if self._hashed is not None:
            self._hashed.result()  # in order, and at most one block waiting
        if len(chunk) < BLOCK_BYTES:  # a small file or the end of one: no thread to start
            self._digest.update(chunk)
            self._hashed = None
        else:
            self._hashed = self._hashing.submit(self._digest.update, chunk)
        return chunk

    def _hand_out(self, data: bytes) -> Span:
        span = Span(data, self.offset, self.newlines, count_newlines(data))
        self.offset += len(data)
        self.newlines += span.count
        return span

    def _take(self, size: int) -> Span:
        data, self._pending = self._pending[:size], self._pending[size:]
        return self._hand_out(data)

    def block(self) -> Span:
        """About BLOCK_BYTES of whole lines (the rest of the file at its end; empty after it)."""
        if len(self._pending) < BLOCK_BYTES and not self.eof:
            chunk = self._read()
            cut = chunk.rfind(b"\n") + 1
            if cut:
                head, self._pending = self._pending, chunk[cut:]
                return self._hand_out(b"".join((head, memoryview(chunk)[:cut])))
            self._pending += chunk
        if self.eof:
            return self._take(len(self._pending))
        end = self._pending.rfind(b"\n")
        return self._take(end + 1) if end >= 0 else self.line()

    def line(self) -> Span:
        """One line, with its newline (the rest of the file at its end)."""
        while (end := self._pending.find(b"\n")) < 0 and not self.eof:
            if len(self._pending) > LONGEST_LINE_BYTES:
                raise LineTooLong(LONGEST_LINE_BYTES)
            self._pending += self._read()
        return self._take(end + 1 if end >= 0 else len(self._pending))

    def rest_is_blank(self) -> bool:
        """Whether nothing but whitespace follows (looked for in the next block only)."""
        if not self.eof:
            self._pending += self._read()
        return self.eof and not self._pending.decode(CSV_ENCODING, "replace").strip()

    def md5(self) -> str:
        if self._hashed is not None:
            self._hashed.result()
        return self._digest.hexdigest()


def count_newlines(data: bytes) -> int:
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == ord("\n")))


def lines_are_newlines(data: bytes) -> bool:
    """Whether each line ends in \\n (no quote can join lines, no lone \\r end one)."""
    return b'"' not in data and (b"\r" not in data or data.count(b"\r") == data.count(b"\r\n"))


def split_in_halves(span: Span) -> tuple[Span, Span] | None:
    cut = span.data.find(b"\n", len(span.data) // 2) + 1
    if cut <= 0 or cut >= len(span.data):
        return None
    first, second = span.data[:cut], span.data[cut:]
    count = count_newlines(first)
    return (
        Span(first, span.offset, span.newlines, count, span.line),
        Span(second, span.offset + cut, span.newlines + count, span.count - count, span.line + count),
    )
