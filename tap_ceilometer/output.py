"""How the tap's Singer messages leave the process: in chunks, through a wide pipe."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import stat
import sys
from typing import TYPE_CHECKING

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import SingerMessageType
from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

PIPE_SIZE = 1 << 20  # bytes: /proc/sys/fs/pipe-max-size's default


class SingerOutput(MsgSpecWriter):
    """The SDK's msgspec writer, writing records in chunks and flushing at every other message.

    The SDK's writers flush after every message: one write system call per record, and for
    a tap with a reader thread, one hand-over of the GIL each. Records are gathered up to
    CHUNK bytes instead; any other message (a STATE above all) goes out together with every
    record before it, so a target never holds a bookmark ahead of the records it covers.
    """

    CHUNK = 1 << 16

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        # Records still gathered when the process ends without a last STATE (a failure,
        # --test) go out as they did when every record was flushed at once.
        atexit.register(self._flush_at_exit)

    @override
    def write_message(self, message: Message) -> None:
        self._pending += self.format_message(message)
        if message.type is not SingerMessageType.RECORD or len(self._pending) >= self.CHUNK:
            self.flush()

    def _flush_at_exit(self) -> None:
        if self._pending:
            with contextlib.suppress(OSError, ValueError):  # stdout already closed
                self.flush()

    def flush(self) -> None:
        """Write out the gathered messages and flush stdout."""
        out = sys.stdout
        if self._pending:
            binary = getattr(out, "buffer", None)
            if binary is None:  # a text stream, e.g. stdout redirected in-process
                out.write(self._pending.decode())
            else:
                binary.write(self._pending)
            self._pending.clear()
        out.flush()


def widen_stdout_pipe(size: int = PIPE_SIZE) -> None:
    """Let a pipe on stdout hold `size` bytes (Linux; the default is 64 KiB, ~50 records).

    A target stops reading while it loads a batch and then reads faster than the tap writes
    for a moment; a pipe with room for a few hundred records lets the tap write ahead through
    its own pauses (a page request, a token renewal) instead of leaving the target idle.
    """
    setter = getattr(fcntl, "F_SETPIPE_SZ", None)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = sys.stdout.fileno()
        if setter is not None and stat.S_ISFIFO(os.fstat(fd).st_mode):
            # Beyond /proc/sys/fs/pipe-max-size or the user's pipe quota the kernel refuses,
            # and the pipe keeps its size: only speed is at stake.
            fcntl.fcntl(fd, setter, size)
