"""The worker: priority polling, N job slots, a visibility heartbeat and a SIGTERM drain.

Threads, and what each owns:
- the poller receives batches (never more than free slots plus prefetch) and hands them to the buffer;
- N slot threads take messages from the buffer and run the job handler; a failed job's message gets
  the retry delay, a succeeded one goes to the deleter, which deletes them in batches;
- the heartbeat extends the visibility of every held message while its job waits or runs;
- the main thread keeps the health file fresh, flushes metrics and, on SIGTERM or SIGINT, drains.

The drain's deadline is the end of DRAIN_SECONDS, or, when the stop-notice file names the moment the
instance goes (a Spot interruption), the release margin before it, whichever comes first
(queue_scaler/lifecycle/domain/deadlines.py). A running job whose bound says it cannot finish by the deadline
is released at once, so that another worker starts it now rather than after the notice; at the
deadline whatever still runs is released. Both are recorded `released`, never `failed`. A second
SIGTERM (a Spot notice during a drain already under way) reads the notice again.

Every message this process holds is in `_held` until it is settled (deleted, failed or released).
A settlement first takes the message out of `_held` under `_settle_lock` (one actor wins it), and
the heartbeat extends only messages still held, its call made under that lock. That is what makes
"released" final: a heartbeat can never hide a message again once the drain has made it visible,
and a job that finishes after its message was released never deletes a message another worker may
now be running. Deletes and releases make their call after the lock is let go, so that a slow delete
never holds the drain's release back past the SIGKILL; after the release only bookkeeping is left,
and each of its waits ends before that moment (`EXIT_MARGIN_SECONDS`).
"""

from __future__ import annotations

import importlib
import json
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from queue_scaler.credits.domain.ledger import AttemptOutcome, StartVerdict
from queue_scaler.credits.ports import StartResult
from queue_scaler.lifecycle.domain.deadlines import cannot_finish, gone_by, stop_deadline
from queue_scaler.shared.jobs import JobEnvelope
from queue_scaler.shared.metric_names import Metric
from queue_worker.attempts import AttemptRecorder
from queue_worker.health import HealthFile
from queue_worker.protection import NoProtection, Protection
from queue_worker.scheduling import PriorityBuffer, PriorityOrder, SlotBoard
from queue_worker.settings import MAX_BATCH, WorkerSettings
from queue_worker.sqs import Queues, ReceivedMessage, queue_name
from queue_worker.telemetry import Telemetry
from queue_worker.warm import WarmStandby

JobHandler = Callable[[JobEnvelope], object]

#: Longest pause after failed receives, so that an SQS outage is retried but not hammered.
MAX_RECEIVE_BACKOFF_SECONDS = 20.0
#: SQS's longest visibility timeout.
MAX_VISIBILITY_SECONDS = 43_200
#: Seconds kept before Docker's SIGKILL (or the instance's end) for the last flush and the exit itself:
#: the steps after the release wait no longer than that moment less this.
EXIT_MARGIN_SECONDS = 1.0
#: How long the exit waits for the scale-in protection's last call when no SIGKILL time is known.
PROTECTION_STOP_SECONDS = 10.0
#: Why a receive deletes its message without running the job (the `reason` of `job_refused`).
REFUSALS = {
    StartVerdict.REFUNDED: "the job failed for good and was refunded (or recorded)",
    StartVerdict.UNRESERVED: "the job has no reservation (never submitted, or its send failed and it was released)",
}
#: How long a finished job's deletion waits for others to share one DeleteMessageBatch call.
DELETE_GATHER_SECONDS = 0.05


@dataclass(frozen=True)
class _Running:
    """A job whose handler runs: when it started (the worker's clock) and how long it may take."""

    message: ReceivedMessage
    started: float
    bound: float


@dataclass(eq=False)
class _Success:
    """A job that succeeded, waiting for its message to be deleted."""

    message: ReceivedMessage
    job_id: str
    seconds: float
    fields: dict[str, Any]


def load_handler(spec: str) -> JobHandler:
    """Import the JOB_HANDLER `module:function`; raises ImportError, AttributeError or TypeError."""
    module_name, _, attribute = spec.partition(":")
    handler = getattr(importlib.import_module(module_name), attribute)
    if not callable(handler):
        raise TypeError(f"JOB_HANDLER {spec!r} is not callable")
    return handler  # type: ignore[no-any-return]


def peek_job_id(body: str) -> str | None:
    """The body's `job_id` when it has a readable one, for logging messages that fail validation."""
    try:
        value = json.loads(body).get("job_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def describe_validation_error(error: ValidationError) -> str:
    """A one-line reason naming every invalid field of an envelope."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())


class Worker:
    """One worker process: see the module docstring for its threads and their invariants."""

    def __init__(
        self,
        settings: WorkerSettings,
        queues: Queues,
        handler: JobHandler,
        telemetry: Telemetry,
        health: HealthFile,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        protection: Protection | None = None,
        attempts: AttemptRecorder | None = None,
        standby: WarmStandby | None = None,
    ) -> None:
        self._settings = settings
        self._standby = standby
        self._attempts = attempts or AttemptRecorder(None, telemetry)
        self._queues = queues
        self._handler = handler
        self._telemetry = telemetry
        self._health = health
        self._clock = clock
        self._wall_clock = wall_clock
        self._protection = protection or NoProtection()

        self._stop = threading.Event()  # set by the signal handler: nothing else may happen there
        self._signalled_again = threading.Event()  # a signal during the drain: read the notice again
        self._signal_name = ""
        self._heartbeat_stop = threading.Event()
        self._healthy = False

        # Guards the slot board, the buffer, the counters, the deletions waiting and the stop flags.
        self._cond = threading.Condition()
        self._board = SlotBoard(slots=settings.worker_slots, prefetch=settings.worker_prefetch)
        self._buffer: PriorityBuffer[ReceivedMessage] = PriorityBuffer()
        self._stopping = False
        # Set at the stop: when this process is certainly gone (wall clock), None while unknown.
        self._gone_by: float | None = None
        # The same moment on the worker's clock: the exit's waits end before it.
        self._killed_at: float | None = None
        self._counts: Counter[str] = Counter()
        self._deletes: list[_Success] = []
        # The batch the deleter has taken and is deleting: finished too, never to be released.
        self._deleting: list[_Success] = []
        self._deleter_stop = False
        # Jobs whose handler runs, by receipt handle; and those released while still running, which
        # the drain no longer waits for (their threads cannot be stopped).
        self._running: dict[str, _Running] = {}
        self._abandoned: set[str] = set()

        # Guards `_held` and every SQS call that settles or extends a held message.
        self._settle_lock = threading.Lock()
        self._held: dict[str, ReceivedMessage] = {}
        # Receipt handle -> job id of the jobs running under a lease this worker renews.
        self._leased: dict[str, str] = {}

        self._priority = PriorityOrder(len(queues.urls), settings.starvation_limit)

    # Entry points -----------------------------------------------------------------------------

    def request_stop(self, signum: int, _frame: FrameType | None = None) -> None:
        """Signal handler for SIGTERM and SIGINT: ask the main loop to drain."""
        self._signal_name = signal.Signals(signum).name
        if self._stop.is_set():
            self._signalled_again.set()
        self._stop.set()

    def run(self) -> int:
        """Consume until a stop is requested, then drain; returns the process exit code (0)."""
        settings = self._settings
        self._telemetry.event(
            "worker_started",
            "worker started",
            queues=[queue_name(url) for url in self._queues.urls],
            slots=settings.worker_slots,
            prefetch=settings.worker_prefetch,
            drain_seconds=settings.drain_seconds,
            visibility_timeout=settings.visibility_timeout,
        )
        poller = threading.Thread(target=self._poll_loop, name="poller", daemon=True)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        deleter = threading.Thread(target=self._delete_loop, name="deleter", daemon=True)
        # Daemon threads: a job still running at the drain deadline has been released and must
        # not keep the process alive past it.
        for slot in range(settings.worker_slots):
            threading.Thread(target=self._slot_loop, name=f"slot-{slot}", daemon=True).start()
        poller.start()
        heartbeat.start()
        deleter.start()

        while not self._stop.wait(timeout=1.0):
            if self._healthy:
                self._health.mark_healthy()
            self._telemetry.flush_if_due()
        self._drain(poller, heartbeat, deleter)
        return 0

    # Threads ----------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        if self._standby is not None and not self._standby.wait(self._stop, self._standing_by):
            return
        idle = False
        backoff = 0.0
        while True:
            with self._cond:
                while not self._stopping and not self._stop.is_set() and self._board.receive_budget() == 0:
                    self._cond.wait(timeout=1.0)
                if self._stopping or self._stop.is_set():
                    return
                budget = self._board.receive_budget()
            order = self._priority.order()
            polled: list[int] = []
            received: list[ReceivedMessage] = []
            try:
                for position, index in enumerate(order):
                    if self._stop.is_set():
                        break
                    # Long-poll only the first queue, and only once a whole sweep found nothing:
                    # a busy worker keeps sweeping with short polls so that priority is applied to
                    # what is there now; an idle one waits where the most important work arrives.
                    wait = self._settings.poll_wait_seconds if idle and position == 0 else 0
                    polled.append(index)
                    received = self._queues.receive(index, budget, wait, self._settings.visibility_timeout)
                    if received:
                        break
            except (BotoCoreError, ClientError) as error:
                self._healthy = False
                backoff = min(MAX_RECEIVE_BACKOFF_SECONDS, backoff * 2 or 1.0)
                self._telemetry.event(
                    "receive_failed",
                    "receive failed; retrying",
                    level="warning",
                    queue=queue_name(self._queues.urls[polled[-1]]),
                    error=repr(error),
                    retry_in_seconds=backoff,
                )
                self._stop.wait(backoff)
                continue
            backoff = 0.0
            self._healthy = True
            self._priority.record(polled)
            idle = not received and len(polled) == len(order)
            if received:
                self._accept(received)

    def _standing_by(self, standing: bool) -> None:
        # Healthy in the warm pool (the warm pass checks the image runs and its settings are valid);
        # not healthy on leaving it until a receive works, as after a cold start.
        self._healthy = standing

    def _accept(self, received: list[ReceivedMessage]) -> None:
        with self._settle_lock:
            for message in received:
                self._held[message.receipt_handle] = message
        # Protected before its job starts, so that scale-in passes this instance by (protection.py).
        self._protection.busy()
        with self._cond:
            if not (self._stopping or self._stop.is_set()):
                for message in received:
                    self._buffer.push(message.queue_index, message)
                self._board.buffered += len(received)
                self._cond.notify_all()
                return
        # A receive that was already under way when the stop came: give its messages back at once.
        self._release(received, "received while stopping")

    def _slot_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._buffer:
                    self._cond.wait(timeout=1.0)
                if self._stopping:
                    return
                message = self._buffer.pop()
                self._board.buffered -= 1
                self._board.running += 1
            try:
                self._run(message)
            finally:
                with self._cond:
                    self._board.running -= 1
                    self._running.pop(message.receipt_handle, None)
                    self._abandoned.discard(message.receipt_handle)
                    self._cond.notify_all()

    def _heartbeat_loop(self) -> None:
        while not self._heartbeat_stop.wait(self._settings.heartbeat_period):
            with self._settle_lock:
                held = list(self._held.values())
                failures = self._queues.set_visibility(held, self._settings.visibility_timeout) if held else []
                leased = [(self._held[rh], job) for rh, job in self._leased.items() if rh in self._held]
            # The run lease follows the visibility: a worker that stops beating loses both together.
            for message, job_id in leased:
                if not self._attempts.renew(job_id, message):
                    self._telemetry.event(
                        "lease_lost",
                        "could not renew the job's lease; another receive may run it once it expires",
                        level="warning",
                        job_id=job_id,
                        message_id=message.message_id,
                    )
            for message, reason in failures:
                self._telemetry.event(
                    "heartbeat_failed",
                    "could not extend visibility; the message may be delivered again",
                    level="warning",
                    job_id=peek_job_id(message.body),
                    message_id=message.message_id,
                    reason=reason,
                )

    # One job ----------------------------------------------------------------------------------

    def _run(self, message: ReceivedMessage) -> None:
        started = self._clock()
        queue = queue_name(message.queue_url)
        try:
            job = JobEnvelope.from_body(message.body)
        except ValidationError as error:
            self._fail(
                message,
                peek_job_id(message.body),
                started,
                f"invalid envelope: {describe_validation_error(error)}",
            )
            return
        fields: dict[str, Any] = {"queue": queue, "attempt": message.receive_count, "plan": job.plan}
        if message.sent_at is not None:
            waited = max(0.0, self._wall_clock() - message.sent_at)
            self._telemetry.queue_wait(waited)
            fields["queue_wait_seconds"] = round(waited, 3)
        start = self._attempts.start(job.job_id, message)
        if start is None or start.verdict != StartVerdict.START:
            self._not_started(message, job.job_id, start)
            return
        with self._settle_lock:
            self._leased[message.receipt_handle] = job.job_id
        self._telemetry.event("job_started", "job started", job_id=job.job_id, kind=job.kind, **fields)
        with self._cond:
            self._running[message.receipt_handle] = _Running(message, started, self._settings.job_bound(job.kind))
            self._cond.notify_all()
        try:
            self._handler(job)
        except Exception as error:  # any handler error fails the job, never the worker
            self._unlease(message)
            self._fail(message, job.job_id, started, f"{type(error).__name__}: {error}")
            return
        self._unlease(message)
        if not self._attempts.end(job.job_id, message, AttemptOutcome.COMPLETED):
            # Refunded while it ran (its lease was lost) or the ledger could not be written: the work is
            # done and its message is deleted either way; the ledger keeps the first end.
            self._telemetry.event(
                "completion_not_recorded",
                "job ran but the ledger did not record its completion",
                level="warning",
                job_id=job.job_id,
            )
        # Before the deletion: a worker killed between deleting the message and logging job_completed
        # would otherwise leave a job that ran and is gone with no line saying so.
        self._telemetry.event("job_succeeded", "job succeeded; deleting its message", job_id=job.job_id)
        with self._cond:
            self._deletes.append(_Success(message, job.job_id, self._clock() - started, fields))
            self._cond.notify_all()

    def _unlease(self, message: ReceivedMessage) -> None:
        with self._settle_lock:
            self._leased.pop(message.receipt_handle, None)

    def _not_started(self, message: ReceivedMessage, job_id: str, start: StartResult | None) -> None:
        """A receive that may not run its job: leave it to come back, or delete it (logged and counted)."""
        if start is None:
            # No lease could be taken: running now could run the job twice. Back after the retry delay.
            delay = max(1, self._settings.retry_delay_seconds)
            self._settle(message, lambda: self._queues.set_visibility([message], delay))
            self._telemetry.count(Metric.LEASE_ERRORS)
            self._telemetry.event(
                "job_not_started",
                "the ledger could not lease the job; it comes back later",
                level="warning",
                job_id=job_id,
                retry_in_seconds=delay,
            )
            return
        if start.verdict == StartVerdict.LEASED:
            # Another receive (a duplicate copy, or this message received again) runs it: come back when
            # its lease would have expired, to run it if that worker died or to delete it once it completed.
            left = start.lease.expires_at - self._wall_clock() if start.lease else self._settings.visibility_timeout
            seconds = min(MAX_VISIBILITY_SECONDS, max(1, math.ceil(left)))
            self._settle(message, lambda: self._queues.set_visibility([message], seconds))
            self._telemetry.count(Metric.LEASE_CONFLICTS)
            self._telemetry.event(
                "job_leased_elsewhere",
                "another receive holds the job's lease; message left to come back",
                job_id=job_id,
                message_id=message.message_id,
                retry_in_seconds=seconds,
            )
            return
        self._settle(message, lambda: self._queues.delete([message]))
        if start.verdict == StartVerdict.COMPLETED:
            # A copy SQS delivered twice, or a returned dead letter, of a job that ran: never run twice.
            self._telemetry.count(Metric.DUPLICATES_SKIPPED)
            self._telemetry.event("job_skipped", "job already completed; message deleted", job_id=job_id)
            return
        # Refunded, released or never reserved: running it would give the user the work and the credits,
        # or run it unpaid. JobsRefused has an alarm.
        self._telemetry.count(Metric.JOBS_REFUSED)
        self._telemetry.event(
            "job_refused",
            "job not run; message deleted",
            level="warning",
            job_id=job_id,
            reason=REFUSALS[start.verdict],
            message_id=message.message_id,
        )

    def _delete_loop(self) -> None:
        while True:
            with self._cond:
                while not self._deletes and not self._deleter_stop:
                    self._cond.wait(timeout=1.0)
                if not self._deletes:
                    return
                # Jobs finishing in the next moment share the call: one request per 10 messages
                # instead of one each, which is most of the worker's SQS traffic. The condition is
                # notified by every job that ends, so the gathering runs to its own deadline.
                gathered_by = time.monotonic() + DELETE_GATHER_SECONDS
                while (
                    len(self._deletes) < MAX_BATCH
                    and not self._deleter_stop
                    and (left := gathered_by - time.monotonic()) > 0
                ):
                    self._cond.wait(timeout=left)
                batch, self._deletes = self._deletes[:MAX_BATCH], self._deletes[MAX_BATCH:]
                self._deleting = batch
            self._complete(batch)
            with self._cond:
                self._deleting = []

    def _complete(self, batch: list[_Success]) -> None:
        """Delete the messages of succeeded jobs that are still held, then report each job."""
        with self._settle_lock:
            mine = [s for s in batch if self._held.pop(s.message.receipt_handle, None) is not None]
        # Outside the lock: these messages are no longer held, so neither the heartbeat nor the drain's
        # release touches them, and a slow delete cannot hold the release back past the SIGKILL.
        failures = self._queues.delete([s.message for s in mine]) if mine else {}
        with self._settle_lock:
            self._idle_if_empty()
        for success in batch:
            # The job completed either way (its handler succeeded, the ledger recorded it): counted.
            self._telemetry.job_completed(success.seconds)
            self._count("completed")
            if success not in mine:
                # Released at the drain deadline while its end was being written: the next receive
                # finds it completed and deletes the message.
                self._telemetry.event(
                    "job_finished_after_release",
                    "job finished after its message was released; not deleted",
                    level="warning",
                    job_id=success.job_id,
                )
                continue
            error = failures.get(success.message.receipt_handle)
            self._telemetry.event(
                "job_completed",
                "job completed",
                job_id=success.job_id,
                seconds=round(success.seconds, 3),
                deleted=error is None,
                **success.fields,
            )
            if error is not None:
                self._telemetry.event(
                    "delete_failed",
                    "job completed but its message could not be deleted; it will be delivered again",
                    level="error",
                    job_id=success.job_id,
                    error=error,
                )

    def _fail(self, message: ReceivedMessage, job_id: str | None, started: float, reason: str) -> None:
        """Leave a failed job to the redrive policy: visible again after RETRY_DELAY_SECONDS."""
        seconds = self._clock() - started
        failures: list[tuple[ReceivedMessage, str]] = []
        delay = self._settings.retry_delay_seconds
        settled = self._settle(message, lambda: failures.extend(self._queues.set_visibility([message], delay)))
        self._attempts.end(job_id, message, AttemptOutcome.FAILED, reason)
        self._telemetry.job_failed(seconds)
        self._count("failed")
        self._telemetry.event(
            "job_failed",
            "job failed; left to the queue's redrive policy",
            level="error",
            job_id=job_id,
            reason=reason,
            queue=queue_name(message.queue_url),
            attempt=message.receive_count,
            message_id=message.message_id,
            seconds=round(seconds, 3),
            retry_in_seconds=delay if settled and not failures else None,
        )

    def _settle(self, message: ReceivedMessage, action: Callable[[], object]) -> bool:
        """Run `action` on a still-held message and stop holding it; False when already released."""
        with self._settle_lock:
            if self._held.pop(message.receipt_handle, None) is None:
                return False
            action()
            self._idle_if_empty()
            return True

    def _release(self, messages: list[ReceivedMessage], reason: str) -> None:
        """Make still-held `messages` visible at once (unstarted, or out of drain time)."""
        if not messages:
            return
        with self._settle_lock:
            mine = [m for m in messages if self._held.pop(m.receipt_handle, None) is not None]
        # Made visible outside the lock, as a delete is (`_complete`): a heartbeat under way ended before
        # the pop above, and none after it extends these messages again.
        failures = dict((m.receipt_handle, why) for m, why in self._queues.set_visibility(mine, 0)) if mine else {}
        with self._settle_lock:
            self._idle_if_empty()
        for message in mine:
            self._count("released")
            # A release is not a failure: recorded, it keeps this receive from counting toward a refund.
            self._attempts.end(
                peek_job_id(message.body), message, AttemptOutcome.RELEASED, reason, hold_until=self._gone_by
            )
            self._telemetry.event(
                "job_released",
                "message made visible again",
                level="warning" if message.receipt_handle in failures else "info",
                job_id=peek_job_id(message.body),
                message_id=message.message_id,
                reason=reason,
                error=failures.get(message.receipt_handle),
            )

    def _idle_if_empty(self) -> None:
        """Called under `_settle_lock` after a settlement: a worker holding nothing may be scaled in."""
        if not self._held:
            self._protection.idle()

    def _count(self, what: str) -> None:
        with self._cond:
            self._counts[what] += 1

    # Shutdown ---------------------------------------------------------------------------------

    def _stop_deadline(self, signalled_at: float) -> tuple[float, float | None]:
        """The drain's deadline on the worker's clock, and the notice's end (None without a notice)."""
        ends_at = self._notice_ends_at()
        notice = None if ends_at is None else self._clock() + (ends_at - self._wall_clock())
        return stop_deadline(signalled_at, self._settings.drain_seconds, notice), notice

    def _note_gone_by(self, signalled_at: float, notice: float | None) -> None:
        """When this process is certainly gone, on the wall clock: what a released run's lease is cut to."""
        ends = gone_by(signalled_at, self._settings.stop_timeout_seconds, notice)
        self._killed_at = ends
        self._gone_by = None if ends is None else self._wall_clock() + (ends - self._clock())

    def _before_kill(self, seconds: float) -> float:
        """`seconds`, cut so that a wait that long ends `EXIT_MARGIN_SECONDS` before the SIGKILL."""
        if self._killed_at is None:
            return seconds
        return max(0.0, min(seconds, self._killed_at - EXIT_MARGIN_SECONDS - self._clock()))

    def _notice_ends_at(self) -> float | None:
        """The epoch second the stop-notice file names, or None when there is none (or it is unreadable)."""
        path = self._settings.stop_notice_file
        if path is None:
            return None
        try:
            return float(path.read_text().strip())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            self._telemetry.event(
                "stop_notice_unreadable",
                "stop notice unreadable; draining on DRAIN_SECONDS",
                level="warning",
                path=str(path),
                error=repr(error),
            )
            return None

    def _release_unfinishable(self, deadline: float) -> None:
        """Release at once the running jobs that cannot finish by `deadline`: they start elsewhere now."""
        with self._cond:
            doomed = [
                job
                for handle, job in self._running.items()
                if handle not in self._abandoned and cannot_finish(job.started, job.bound, deadline)
            ]
            self._abandoned.update(job.message.receipt_handle for job in doomed)
            self._cond.notify_all()
        if doomed:
            self._release([job.message for job in doomed], "cannot finish before the stop deadline")

    def _wind_down(self, deleter: threading.Thread, heartbeat: threading.Thread) -> None:
        """After the release: the deleter's last batch, the heartbeat and the protection's last call."""
        # What is left is bookkeeping: each wait ends before the SIGKILL, so that the worker exits 0
        # with its last lines written rather than being killed in a call the local cloud or AWS is slow
        # to answer. A delete cut short comes back and is skipped as completed (the ledger has it).
        deleter.join(timeout=self._before_kill(self._settings.read_timeout))
        if not deleter.is_alive():
            # Jobs that ended after the deleter's last turn (their messages were released at the
            # deadline): counted and reported like every other completion before the last flush.
            with self._cond:
                late, self._deletes = self._deletes, []
            if late:
                self._complete(late)
        self._heartbeat_stop.set()
        heartbeat.join(timeout=self._before_kill(self._settings.read_timeout))
        unprotected = self._protection.stop(self._before_kill(PROTECTION_STOP_SECONDS))
        hurried = [t.name for t in (deleter, heartbeat) if t.is_alive()] + ([] if unprotected else ["protection"])
        if hurried:
            self._telemetry.event(
                "exit_hurried",
                "exiting before the SIGKILL with calls still under way",
                level="warning",
                still_running=hurried,
                kill_in_seconds=None if self._killed_at is None else round(self._killed_at - self._clock(), 3),
            )

    def _drain(self, poller: threading.Thread, heartbeat: threading.Thread, deleter: threading.Thread) -> None:
        signalled_at = self._clock()
        deadline, notice = self._stop_deadline(signalled_at)
        self._note_gone_by(signalled_at, notice)
        self._health.clear()
        with self._cond:
            self._stopping = True
            unstarted = self._buffer.drain()
            self._board.buffered = 0
            running = self._board.running
            self._cond.notify_all()
        self._telemetry.event(
            "worker_stopping",
            "stop requested: receiving stopped, draining",
            signal=self._signal_name,
            running=running,
            unstarted=len(unstarted),
            drain_seconds=self._settings.drain_seconds,
            deadline_in_seconds=round(deadline - signalled_at, 3),
            notice_ends_in_seconds=None if notice is None else round(notice - signalled_at, 3),
        )
        self._release(unstarted, "not started before stop")
        while True:
            self._release_unfinishable(deadline)
            with self._cond:
                # Jobs released while running are not waited for; a job between its receive and its
                # handler is, and is checked against the deadline at the next turn.
                left = deadline - self._clock()
                if self._board.running <= len(self._abandoned) or left <= 0:
                    break
                self._cond.wait(timeout=min(left, 0.5))
            if self._signalled_again.is_set():
                self._signalled_again.clear()
                again, notice = self._stop_deadline(signalled_at)
                deadline = min(deadline, again)
                self._note_gone_by(signalled_at, notice)
                self._telemetry.event(
                    "worker_stop_renewed",
                    "signalled again during the drain: stop notice read again",
                    signal=self._signal_name,
                    deadline_in_seconds=round(deadline - self._clock(), 3),
                    notice_ends_in_seconds=None if notice is None else round(notice - self._clock(), 3),
                )
        # A long poll under way returns within POLL_WAIT_SECONDS (< DRAIN_SECONDS by the settings'
        # rule) and releases what it got; wait for it so that nothing it received stays hidden.
        poller.join(timeout=max(0.0, deadline - self._clock()))
        # Jobs that finished are deleted, not released: that would run them twice. What still runs
        # is released first, at the deadline, before the deleter's calls (bounded by the client's
        # timeouts) can push it past the release margin; then the deleter empties its list and stops.
        with self._cond:
            finished = {success.message.receipt_handle for success in self._deletes + self._deleting}
            self._deleter_stop = True
            self._cond.notify_all()
        with self._settle_lock:
            still_held = [message for handle, message in self._held.items() if handle not in finished]
        self._release(still_held, "drain deadline reached")
        self._wind_down(deleter, heartbeat)
        if poller.is_alive():
            self._telemetry.event(
                "poll_abandoned",
                "a receive was still under way at exit; what it returns stays hidden until its timeout",
                level="warning",
            )
        self._telemetry.flush()
        with self._cond:
            counts = dict(self._counts)
        self._telemetry.event(
            "worker_stopped",
            "worker stopped",
            signal=self._signal_name,
            completed=counts.get("completed", 0),
            failed=counts.get("failed", 0),
            released=counts.get("released", 0),
        )
