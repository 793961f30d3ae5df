"""The one background-work pattern: jobs in order on their own thread, results and errors on the GUI one."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from almanac.app.jobs import JobThread
from almanac.app.throttle import Throttle
from almanac.core.errors import AlmanacError


@pytest.fixture
def jobs():
    errors: list[BaseException] = []
    thread = JobThread("test-jobs", on_error=errors.append)
    thread.errors = errors
    yield thread
    thread.stop()


def test_jobs_run_in_order_off_the_gui_thread_and_report_on_it(qtbot, jobs):
    gui = threading.current_thread()
    ran_on: list[threading.Thread] = []
    results: list[tuple[int, threading.Thread]] = []
    for i in range(5):
        jobs.submit(
            lambda i=i: (ran_on.append(threading.current_thread()), i)[1],
            success=lambda r: results.append((r, threading.current_thread())),
        )
    qtbot.waitUntil(lambda: len(results) == 5)
    assert [r for r, _ in results] == [0, 1, 2, 3, 4]
    assert all(t is gui for _, t in results)
    assert len(set(ran_on)) == 1 and ran_on[0] is not gui


def test_failures_come_back_typed(qtbot, jobs):
    seen: list[BaseException] = []
    jobs.submit(lambda: (_ for _ in ()).throw(AlmanacError("disk full")), failure=seen.append)
    jobs.submit(lambda: 1 / 0)  # no failure callback: the default handler gets it
    qtbot.waitUntil(lambda: bool(seen and jobs.errors))
    assert isinstance(seen[0], AlmanacError) and str(seen[0]) == "disk full"
    assert isinstance(jobs.errors[0], ZeroDivisionError)


def test_stop_lets_the_running_job_finish_skips_queued_ones_and_runs_the_final_one(qtbot):
    started, gate = threading.Event(), threading.Event()
    ran: list[str] = []
    thread = JobThread("test-stop", on_error=lambda e: None)
    thread.submit(lambda: (started.set(), gate.wait(5), ran.append("running")))
    thread.submit(lambda: ran.append("queued"))
    assert started.wait(5)

    def release_once_stopping() -> None:
        thread._stopping.wait(5)
        gate.set()

    threading.Thread(target=release_once_stopping).start()
    assert thread.stop(lambda: ran.append("final"))
    assert ran == ["running", "final"]
    assert not thread.isRunning()
    thread.submit(lambda: ran.append("after stop"))  # ignored, no error
    assert thread.stop()
    assert ran == ["running", "final"]


def test_throttle_folds_a_burst_into_few_updates_and_keeps_the_last(qtbot):
    delivered: list[int] = []
    throttle = Throttle(delivered.append, 100)
    worker = threading.Thread(target=lambda: [throttle.push(i) for i in range(20_000)])
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: bool(delivered) and delivered[-1] == 19_999)
    assert len(delivered) <= 3


def test_throttle_merge_keeps_every_piece_of_text(qtbot):
    delivered: list[str] = []
    throttle = Throttle(delivered.append, 30, merge=lambda a, b: a + b)
    words = [f"w{i} " for i in range(500)]
    worker = threading.Thread(target=lambda: [throttle.push(w) for w in words])
    worker.start()
    worker.join()
    throttle.flush()
    assert "".join(delivered) == "".join(words)
    assert len(delivered) < 50


def test_stop_is_bounded_even_when_a_job_ignores_cancellation(qtbot):
    from almanac.app import jobs as jobs_module

    release = threading.Event()
    started = threading.Event()
    thread = JobThread("test-stuck", on_error=lambda e: None)
    thread.submit(lambda: (started.set(), release.wait(30)))  # a native call that never checks a flag
    assert started.wait(5)
    t0 = time.monotonic()
    assert thread.stop(timeout_ms=300) is False
    assert time.monotonic() - t0 < 2
    assert jobs_module.stuck_threads() == ["test-stuck"]
    release.set()  # let it end, so this test leaves nothing behind
    assert thread.wait(5_000)
    assert jobs_module.stuck_threads() == []


STUCK_APP = """
import threading
from PySide6.QtWidgets import QApplication
from almanac.app import jobs, main

app = QApplication([])
thread = jobs.JobThread("never-ends", on_error=lambda e: None)
started = threading.Event()
thread.submit(lambda: (started.set(), threading.Event().wait()))
started.wait(5)
thread.stop(timeout_ms=200)  # what closing the window does, with a job that ignores its cancel flag
main.end_if_stuck(0)
print("still alive", flush=True)
"""


def test_a_stuck_job_never_leaves_the_process_alive_after_the_window_closes(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), QT_QPA_PLATFORM="offscreen")
    env["ALMANAC_HOME"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", STUCK_APP], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "still alive" not in proc.stdout
