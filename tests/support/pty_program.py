"""Drive a command in a pseudo-terminal, as a person at a keyboard would (no pexpect needed).

`PtyProgram` starts the process with a pty as its stdin/stdout/stderr, reads with timeouts, strips ANSI
escapes and carriage returns, and finds text in what came since the last match.
"""

from __future__ import annotations

import codecs
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def clean(raw: str) -> str:
    """Terminal output as text: no ANSI escapes, no carriage returns."""
    return ANSI.sub("", raw).replace("\r", "")


class PtyProgram:
    """A process on a pseudo-terminal: `send` lines, `expect` text (regex) with a timeout."""

    def __init__(self, argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
        """Start `argv` with the pty's slave as its terminal."""
        master, slave = os.openpty()
        self.proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.fd = master
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.raw = ""
        self.pos = 0  # in clean(self.raw): where the next expect starts looking

    @property
    def text(self) -> str:
        """Everything the program wrote so far, cleaned."""
        return clean(self.raw)

    def _read(self, timeout: float) -> bool:
        """Read what is available within `timeout`; False at end of output."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the program closed its terminal
            return False
        if not chunk:
            return False
        self.raw += self._decoder.decode(chunk)
        return True

    def expect(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """Wait until `pattern` (a regex) appears after the previous match; AssertionError on timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.text, self.pos)
            if found:
                self.pos = found.end()
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (not self._read(min(remaining, 0.5)) and self.proc.poll() is not None):
                tail = self.text[self.pos :][-3000:]
                raise AssertionError(f"{pattern!r} not seen within {timeout}s; output since:\n{tail}")

    def send(self, line: str) -> None:
        """Type `line` and Enter."""
        os.write(self.fd, (line + "\r").encode())

    def close(self, timeout: float = 15.0) -> int:
        """Wait for the program to end (kill it past `timeout`) and return its exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        while self._read(0.05) and select.select([self.fd], [], [], 0)[0]:
            pass
        os.close(self.fd)
        return self.proc.returncode
