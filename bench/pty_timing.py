"""Runs a command with its standard error on a pseudo-terminal, so that
portmatrix prints its progress line, and writes every progress message with
the milliseconds since the start, then "exit STATUS" (bench/ssh.sh reads the
phases of check --ssh from them). Standard output goes to a file.

  pty_timing.py LOG STDOUT COMMAND...     exits with the command's status

Each progress message is written at once ("\\r\\033[K" + text, flushed), so
the time a piece of text arrives is the time the message was printed.
"""
import os
import pty
import re
import subprocess
import sys
import time

log_path, out_path, command = sys.argv[1], sys.argv[2], sys.argv[3:]
master, slave = pty.openpty()
start = time.monotonic()
with open(out_path, "wb") as out:
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=slave)
os.close(slave)
with open(log_path, "w") as log:
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has closed it
            break
        if not data:
            break
        now = round((time.monotonic() - start) * 1000)
        for piece in re.split(rb"[\r\n]", data.replace(b"\x1b[K", b"")):
            text = piece.decode(errors="replace").strip()
            if text:
                log.write(f"{now}\t{text}\n")
    status = process.wait()
    log.write(f"{round((time.monotonic() - start) * 1000)}\texit {status}\n")
sys.exit(status if status >= 0 else 128 - status)
