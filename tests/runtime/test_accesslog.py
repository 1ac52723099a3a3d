"""The buffered access-log handler: lines arrive whole, in order, off the caller's thread."""

from __future__ import annotations

import io
import logging
import threading
import time

from routectl.runtime.accesslog import BufferedLineHandler


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def test_lines_are_written_in_batches_by_the_writer_thread() -> None:
    out = io.StringIO()
    handler = BufferedLineHandler(out, interval=0.5)
    log = _logger(handler, "test.accesslog.batches")
    for i in range(100):
        log.info('{"n": %d}', i)
    assert out.getvalue() == ""  # nothing written on the caller's thread
    deadline = time.monotonic() + 5
    while out.getvalue().count("\n") < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert out.getvalue().splitlines() == [f'{{"n": {i}}}' for i in range(100)]
    handler.close()


def test_close_writes_what_is_left_even_with_the_handler_lock_held() -> None:
    out = io.StringIO()
    handler = BufferedLineHandler(out, interval=60)  # the thread would not write on its own
    log = _logger(handler, "test.accesslog.close")
    log.info("first")
    log.info("second")
    done = threading.Event()

    def shutdown_like() -> None:  # what logging.shutdown does: flush and close under the lock
        handler.acquire()
        try:
            handler.flush()
            handler.close()
        finally:
            handler.release()
        done.set()

    threading.Thread(target=shutdown_like, daemon=True).start()
    assert done.wait(10), "close deadlocked"
    assert out.getvalue() == "first\nsecond\n"


def test_a_full_buffer_wakes_the_writer_early() -> None:
    out = io.StringIO()
    handler = BufferedLineHandler(out, interval=60, max_lines=10)
    log = _logger(handler, "test.accesslog.full")
    for i in range(10):
        log.info("line %d", i)
    deadline = time.monotonic() + 5
    while out.getvalue().count("\n") < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert out.getvalue().count("\n") == 10
    handler.close()
