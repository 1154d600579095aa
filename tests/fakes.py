"""In-memory implementations of the ports, for unit tests (no sockets)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from queue_scaler.credits.domain.ledger import (
    Account,
    Attempt,
    AttemptOutcome,
    JobOutcome,
    JobRecord,
    JobStatus,
    Lease,
    StartVerdict,
    Summary,
    may_settle_as_failed,
    start_verdict,
)
from queue_scaler.credits.domain.refund import (
    DEFAULT_BALANCE_CAP,
    FailedJob,
    NoticeState,
    ParkedRecord,
    Reservation,
    UserNotice,
)
from queue_scaler.credits.ports import FailureWrite, ReturnWrite, StartResult, WriteOutcome
from queue_scaler.lifecycle.domain.commands import CommandRequest, Purpose, parse_comment
from queue_scaler.lifecycle.domain.lifecycle import (
    ActionState,
    CommandObservation,
    HookResult,
    LifecycleAction,
)
from queue_scaler.lifecycle.ports import HookRef, PendingActions, WaitingInstance
from queue_scaler.scaling.adapters.memory import MemoryFleet, MemoryHistory, MemoryQueues
from queue_scaler.shared.errors import (
    ActionConflict,
    BalanceCapExceeded,
    DuplicateReservation,
    InsufficientCredits,
    ReferenceTaken,
)
from queue_scaler.shared.metric_names import Metric

# The scaler's in-memory ports are the product's own (queue_scaler.scaling.adapters.memory), shared with the
# simulator and `explain`; the tests add only what they need to inject failures.
FakeQueues = MemoryQueues
FakeHistory = MemoryHistory


@dataclass
class FakeFleet(MemoryFleet):
    fail_set: Exception | None = None

    def set_desired(self, group: str, desired: int) -> None:
        if self.fail_set is not None:
            raise self.fail_set
        super().set_desired(group, desired)


#: Every metric the services publish in the queue-scaler namespace (queue_scaler.shared.metric_names, the one
#: list): what the template's alarms read (tests/unit/shared/test_metric_names.py checks the alarms against
#: it). A renamed or misspelt metric silently starves its alarm, so the recording sink refuses any
#: other name.
PUBLISHED_METRICS = frozenset(Metric)


def _published(names: Iterable[str]) -> None:
    unknown = sorted(set(names) - PUBLISHED_METRICS)
    if unknown:
        raise AssertionError(f"metric(s) not in tests.fakes.PUBLISHED_METRICS: {', '.join(unknown)}")


@dataclass
class RecordingMetrics:
    pools: dict[str, list[Mapping[str, float]]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[tuple[str, str | None], float] = field(default_factory=lambda: defaultdict(float))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pool_metrics(self, pool: str, values: Mapping[Metric, float]) -> None:
        _published(values)
        self.pools[pool].append(dict(values))

    def count(self, name: Metric, value: float = 1, pool: str | None = None) -> None:
        _published([name])
        with self.lock:  # the refund tests count from several threads at once
            self.counts[(name, pool)] += value


@dataclass
class TimingMetrics(RecordingMetrics):
    """RecordingMetrics that also records durations (ports.LifecycleMetricsSink)."""

    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def seconds(self, name: Metric, value: float, pool: str | None = None) -> None:
        _published([name])
        self.durations[name].append(value)


@dataclass
class FakeActionStore:
    """ports.ActionStore in memory, with the same version rule as DynamoDB's."""

    items: dict[tuple[str, str], LifecycleAction] = field(default_factory=dict)
    #: Called before each save, to let a rival invocation act in between (a race).
    before_save: Callable[[LifecycleAction], None] | None = None
    #: Items that are not valid actions, as the DynamoDB store reports them.
    unreadable: list[str] = field(default_factory=list)

    def create(self, action: LifecycleAction) -> LifecycleAction | None:
        if (action.instance_id, action.key) in self.items:
            return None
        stored = action.model_copy(update={"version": 1})
        self.items[(action.instance_id, action.key)] = stored
        return stored

    def get(self, instance_id: str, key: str) -> LifecycleAction | None:
        return self.items.get((instance_id, key))

    def for_instance(self, instance_id: str) -> list[LifecycleAction]:
        return [a for (i, _), a in self.items.items() if i == instance_id]

    def pending(self) -> PendingActions:
        return PendingActions([a for a in self.items.values() if a.state is ActionState.PENDING], list(self.unreadable))

    def save(self, action: LifecycleAction) -> LifecycleAction:
        if self.before_save is not None:
            hook, self.before_save = self.before_save, None
            hook(action)
        stored = self.items.get((action.instance_id, action.key))
        if stored is None or stored.version != action.version:
            raise ActionConflict(action.instance_id, action.key)
        saved = action.model_copy(update={"version": action.version + 1})
        self.items[(action.instance_id, action.key)] = saved
        return saved


@dataclass
class FakeHooks:
    """ports.LifecycleHooks: `active` tokens answer; any other token is "No active Lifecycle Action found"."""

    active: set[str] = field(default_factory=set)
    groups: dict[str, str] = field(default_factory=dict)
    completed: dict[str, HookResult] = field(default_factory=dict)
    heartbeats: list[str] = field(default_factory=list)
    fail: Exception | None = None
    #: Instances held at a hook, as DescribeAutoScalingInstances reports them.
    held: list[WaitingInstance] = field(default_factory=list)
    hooks: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Instances marked Unhealthy (SetInstanceHealth), in order.
    unhealthy: list[str] = field(default_factory=list)

    def complete(self, ref: HookRef, result: HookResult) -> bool:
        if self.fail is not None:
            raise self.fail
        key = ref.token or ref.instance_id  # an action found without its event is named by its instance
        if key not in self.active:
            return False
        self.active.discard(key)
        self.completed[key] = result
        return True

    def heartbeat(self, ref: HookRef) -> bool:
        if self.fail is not None:
            raise self.fail
        key = ref.token or ref.instance_id
        if key not in self.active:
            return False
        self.heartbeats.append(key)
        return True

    def group_of(self, instance_id: str) -> str | None:
        return self.groups.get(instance_id)

    def waiting(self, groups: frozenset[str]) -> list[WaitingInstance]:
        return [w for w in self.held if w.group in groups]

    def hook_name(self, group: str, transition: str) -> str | None:
        return self.hooks.get((group, transition))

    def in_service(self, groups: frozenset[str]) -> list[str]:
        return [
            i for i, g in self.groups.items() if g in groups and i not in self.unhealthy and i not in self.waiting_ids
        ]

    @property
    def waiting_ids(self) -> set[str]:
        return {w.instance_id for w in self.held}

    def mark_unhealthy(self, instance_id: str) -> None:
        if self.fail is not None:
            raise self.fail
        self.unhealthy.append(instance_id)


@dataclass
class FakeCommands:
    """ports.RemoteCommands: every command runs until `finish`; `fail_send` makes SendCommand fail.

    `sent_at` dates the commands a test dates (an earlier warm-pool trip's drain); an undated command
    counts as sent within any `find` window.
    """

    sent: list[tuple[str, str, CommandRequest]] = field(default_factory=list)
    status: dict[str, CommandObservation] = field(default_factory=dict)
    fail_send: Exception | None = None
    sent_at: dict[str, float] = field(default_factory=dict)

    def run(self, instance_id: str, command: CommandRequest) -> str:
        if self.fail_send is not None:
            raise self.fail_send
        command_id = f"cmd-{len(self.sent) + 1}"
        self.sent.append((command_id, instance_id, command))
        self.status[command_id] = CommandObservation(status="InProgress")
        return command_id

    def sweep(self, instance_ids: Sequence[str], command: CommandRequest) -> list[str]:
        return [self.run(instance_id, command) for instance_id in instance_ids]

    def observe(self, command_id: str, instance_id: str) -> CommandObservation:
        if command_id not in self.status:  # another tool's command: readable, and none of ours
            return CommandObservation(status="Success", comment="AWS-RunPatchBaseline")
        comment = next(request.comment for c, _, request in self.sent if c == command_id)
        return self.status[command_id].model_copy(update={"comment": comment})

    def find(self, instance_id: str, purpose: Purpose, since: float) -> str | None:
        return next(
            (
                c
                for c, i, request in reversed(self.sent)
                if i == instance_id
                and parse_comment(request.comment).purpose is purpose
                and self.sent_at.get(c, since) >= since
            ),
            None,
        )

    def finish(self, command_id: str, status: str, output: str = "") -> None:
        self.status[command_id] = CommandObservation(status=status, output=output)


@dataclass
class FakeLedger:
    """The DynamoDB ledger's semantics in memory: each method is one atomic step, as a transaction is.

    Its conditions are the domain's rules (start_verdict, may_settle_as_failed), the same the
    DynamoDB ledger's condition expressions encode; tests/contract_ledger.py runs one suite against both.
    """

    accounts: dict[str, Account] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: dict[str, dict[str, Attempt]] = field(default_factory=lambda: defaultdict(dict))
    deposits: dict[str, str] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: Raised by the next confirm_notice (then cleared), to fail the write after the publish.
    fail_confirm: Exception | None = None
    #: Most credits one balance holds: a deposit past it is refused, as the DynamoDB ledger's condition does.
    balance_cap: int = DEFAULT_BALANCE_CAP

    def _account(self, user_id: str) -> Account:
        return self.accounts.get(user_id, Account(user_id=user_id))

    def put_job(self, pool: str, job_id: str, status: JobStatus = JobStatus.RESERVED, **fields: Any) -> None:
        """A job as the producer (and later writers) left it, without moving credits: for worker tests."""
        with self.lock:
            self.jobs[job_id] = {
                "pool": pool,
                "user_id": "u",
                "plan": "pro",
                "kind": "k",
                "credits": 0,
                "status": status,
                "sent": True,
                **fields,
            }

    def _held(self, pool: str, job_id: str) -> dict[str, Any] | None:
        held = self.jobs.get(job_id)
        return held if held is not None and held.get("pool") == pool else None

    # Credits ------------------------------------------------------------------------------------

    def deposit(self, user_id: str, credits: int, reference: str, now: datetime) -> None:
        if credits > self.balance_cap:
            raise BalanceCapExceeded(user_id, credits, self.balance_cap)
        with self.lock:
            owner = self.deposits.get(reference)
            if owner is not None and owner != user_id:
                raise ReferenceTaken(reference, owner)
            if owner is not None:
                return
            a = self._account(user_id)
            if a.balance + credits > self.balance_cap:
                raise BalanceCapExceeded(user_id, credits, self.balance_cap, a.balance)
            self.deposits[reference] = user_id
            self.accounts[user_id] = a.model_copy(
                update={"balance": a.balance + credits, "deposited": a.deposited + credits}
            )

    def account(self, user_id: str) -> Account | None:
        return self.accounts.get(user_id)

    def reserve(self, reservation: Reservation, claim: str = "claim") -> None:
        with self.lock:
            if reservation.job_id in self.jobs:
                raise DuplicateReservation(reservation.job_id)
            a = self._account(reservation.user_id)
            if reservation.amount and (reservation.user_id not in self.accounts or a.balance < reservation.amount):
                raise InsufficientCredits(reservation.user_id)
            if reservation.amount:
                self.accounts[reservation.user_id] = a.model_copy(
                    update={"balance": a.balance - reservation.amount, "reserved": a.reserved + reservation.amount}
                )
            self.jobs[reservation.job_id] = {
                "pool": reservation.pool,
                "user_id": reservation.user_id,
                "plan": reservation.plan,
                "kind": reservation.kind,
                "credits": reservation.amount,
                "status": JobStatus.RESERVED,
                "sent": False,
                "send_claim": claim,
                "claimed_at": reservation.at,
            }

    def mark_sent(self, pool: str, job_id: str, claim: str, queue: str, message_id: str) -> bool:
        with self.lock:
            held = self._held(pool, job_id)
            if held is None or held.get("send_claim") != claim:
                return False
            held.update(sent=True, queue=queue)
            held.pop("send_unknown", None)
            return True

    def mark_send_unknown(self, pool: str, job_id: str, claim: str) -> bool:
        with self.lock:
            held = self._held(pool, job_id)
            if held is None or held.get("send_claim") != claim or held["sent"]:
                return False
            held["send_unknown"] = True
            return True

    def take_over_send(self, pool: str, job_id: str, seen_claim: str, claim: str, now: datetime) -> bool:
        with self.lock:
            held = self._held(pool, job_id)
            if held is None or held["sent"] or held["send_claim"] != seen_claim:
                return False
            held.update(send_claim=claim, claimed_at=now)
            return True

    def release(self, reservation: Reservation, claim: str) -> bool:
        with self.lock:
            held = self._held(reservation.pool, reservation.job_id)
            if (
                held is None
                or held["sent"]
                or held.get("send_unknown", False)
                or held["send_claim"] != claim
                or "lease" in held
                or held["status"] != JobStatus.RESERVED
            ):
                return False
            del self.jobs[reservation.job_id]
            if reservation.amount:
                a = self._account(reservation.user_id)
                self.accounts[reservation.user_id] = a.model_copy(
                    update={"balance": a.balance + reservation.amount, "reserved": a.reserved - reservation.amount}
                )
            return True

    def job(self, job_id: str) -> JobRecord | None:
        with self.lock:
            held = self.jobs.get(job_id)
            return None if held is None else self.job_in(held["pool"], job_id)

    def job_in(self, pool: str, job_id: str) -> JobRecord | None:
        with self.lock:
            held = self._held(pool, job_id)
            attempts = sorted(self.attempts.get(job_id, {}).values(), key=lambda a: a.at)
            if held is None:
                return None
            failed = held.get("failed")
            status = held.get("status")
            if "completed_at" in held and status == JobStatus.RESERVED:
                status = JobStatus.COMPLETED
            return JobRecord(
                job_id=job_id,
                pool=pool,
                user_id=held.get("user_id"),
                plan=held.get("plan"),
                kind=held.get("kind"),
                credits=held.get("credits", 0),
                status=status,
                refunded=failed.amount if failed else 0,
                sent=held.get("sent", False),
                send_unknown=held.get("send_unknown", False),
                send_claim=held.get("send_claim"),
                claimed_at=held.get("claimed_at"),
                queue=held.get("queue"),
                parked=held.get("parked", False),
                returns=held.get("returns", 0),
                returned=frozenset(held.get("returned", ())),
                returns_sent=frozenset(held.get("returns_sent", ())),
                attempts=attempts,
                lease=held.get("lease"),
                completed_at=held.get("completed_at"),
                completed_attempt=held.get("completed_attempt"),
            )

    # Attempts -----------------------------------------------------------------------------------

    def start_attempt(self, pool: str, job_id: str, attempt: Attempt, lease: Lease, now: float) -> StartResult:
        with self.lock:
            record = self.job_in(pool, job_id)
            verdict = start_verdict(record, lease.owner, now)
            if verdict != StartVerdict.START:
                return StartResult(verdict, record.lease if record else None)
            self.jobs[job_id]["lease"] = lease
            self.attempts[job_id][attempt.attempt_id] = attempt.model_copy(update={"outcome": AttemptOutcome.STARTED})
            return StartResult(StartVerdict.START, lease)

    def renew_lease(self, pool: str, job_id: str, lease: Lease) -> bool:
        with self.lock:
            record = self.job_in(pool, job_id)
            if record is None or record.status != JobStatus.RESERVED or record.lease is None:
                return False
            if record.lease.owner != lease.owner:
                return False
            self.jobs[job_id]["lease"] = record.lease.model_copy(update={"expires_at": lease.expires_at})
            return True

    def end_attempt(  # noqa: PLR0911 - one return per rule of the DynamoDB ledger's conditions
        self, pool: str, job_id: str, attempt: Attempt, owner: str, hold_until: float | None = None
    ) -> bool:
        with self.lock:
            started = self.attempts[job_id].get(attempt.attempt_id)
            if started is not None and started.outcome not in (AttemptOutcome.STARTED, attempt.outcome):
                return False  # an attempt ends once
            self.attempts[job_id][attempt.attempt_id] = attempt.model_copy(
                update={"at": started.at if started else attempt.at}
            )
            record = self.job_in(pool, job_id)
            held = self._held(pool, job_id)
            if record is None or held is None:
                return False
            if attempt.outcome == AttemptOutcome.COMPLETED:
                if record.status != JobStatus.RESERVED:
                    return False
                held.pop("lease", None)
                held.update(completed_at=attempt.at, completed_attempt=attempt.attempt_id)
                return True
            if attempt.outcome != AttemptOutcome.FAILED:
                # Released: the lease stays, cut to `hold_until` by its owner (never lengthened).
                lease = record.lease
                if (
                    hold_until is not None
                    and lease is not None
                    and lease.owner == owner
                    and lease.expires_at > hold_until
                ):
                    held["lease"] = lease.model_copy(update={"expires_at": hold_until})
                return True
            if record.lease is None or record.lease.owner != owner:
                return False
            held.pop("lease", None)
            return True

    # Refunds ------------------------------------------------------------------------------------

    def record_return(self, pool: str, job_id: str, message_id: str, max_returns: int, now: datetime) -> ReturnWrite:
        with self.lock:
            record = self.job_in(pool, job_id)
            held = self._held(pool, job_id)
            if record is None or held is None:
                return ReturnWrite.EXHAUSTED
            if message_id in record.returned:
                return ReturnWrite.ALREADY if message_id in record.returns_sent else ReturnWrite.UNCONFIRMED
            if record.status == JobStatus.RESERVED and not may_settle_as_failed(record, now.timestamp()):
                return ReturnWrite.RUNNING
            if record.returns >= max_returns or record.status != JobStatus.RESERVED:
                return ReturnWrite.EXHAUSTED
            held.setdefault("returned", set()).add(message_id)
            held["returns"] = held.get("returns", 0) + 1
            return ReturnWrite.COUNTED

    def confirm_return(self, pool: str, job_id: str, message_id: str) -> None:
        with self.lock:
            held = self._held(pool, job_id)
            if held is not None:
                held.setdefault("returns_sent", set()).add(message_id)

    def mark_parked(self, pool: str, job_id: str, message_id: str, now: datetime) -> None:
        with self.lock:
            record = self.job_in(pool, job_id)
            if record is not None and record.status == JobStatus.RESERVED:
                # As the DynamoDB ledger writes it: which dead letter was parked, and when.
                self.jobs[job_id].update(parked=True, parked_message=message_id, parked_at=now)

    def record_failure(self, job: FailedJob) -> FailureWrite:
        with self.lock:
            record = self.job_in(job.pool, job.job_id)
            if record is None:
                return FailureWrite(WriteOutcome.REJECTED, reason=f"no reservation for job {job.job_id}")
            held = self.jobs[job.job_id]
            if record.status == JobStatus.COMPLETED:
                return FailureWrite(WriteOutcome.COMPLETED)
            if record.status == JobStatus.FAILED:
                return FailureWrite(
                    WriteOutcome.DUPLICATE, stored=held["failed"], notice=held["notice"], claimed_at=held["claimed_at"]
                )
            if record.user_id != job.user_id or record.credits != job.amount:
                return FailureWrite(WriteOutcome.REJECTED, reason=f"job {job.job_id} reservation does not match")
            if not may_settle_as_failed(record, job.failed_at.timestamp()):
                return FailureWrite(WriteOutcome.RUNNING, reason=f"job {job.job_id} is running under a live lease")
            if job.amount:
                a = self._account(job.user_id)
                self.accounts[job.user_id] = a.model_copy(
                    update={"balance": a.balance + job.amount, "refunded": a.refunded + job.amount}
                )
            held.update(status=JobStatus.FAILED, failed=job, notice=NoticeState.PENDING, claimed_at=job.failed_at)
            return FailureWrite(WriteOutcome.WRITTEN)

    def take_over_notice(self, pool: str, job_id: str, seen_claim: str, claim: str, now: datetime) -> bool:
        with self.lock:
            held = self._held(pool, job_id)
            if held is None or held.get("notice") != NoticeState.PENDING or held["failed"].claim != seen_claim:
                return False
            held["failed"] = held["failed"].model_copy(update={"claim": claim})
            held["claimed_at"] = now
            return True

    def _move_notice(self, pool: str, job_id: str, claim: str, before: NoticeState, after: NoticeState) -> bool:
        with self.lock:
            held = self._held(pool, job_id)
            if held is None or "failed" not in held or held["failed"].claim != claim or held["notice"] != before:
                return False
            held["notice"] = after
            return True

    def start_notice(self, pool: str, job_id: str, claim: str) -> bool:
        return self._move_notice(pool, job_id, claim, NoticeState.PENDING, NoticeState.PUBLISHING)

    def reopen_notice(self, pool: str, job_id: str, claim: str) -> bool:
        return self._move_notice(pool, job_id, claim, NoticeState.PUBLISHING, NoticeState.PENDING)

    def confirm_notice(self, pool: str, job_id: str, claim: str) -> bool:
        if self.fail_confirm is not None:
            error, self.fail_confirm = self.fail_confirm, None
            raise error
        with self.lock:
            held = self._held(pool, job_id)
            if held is None or "failed" not in held or held["failed"].claim != claim:
                return False
            held["notice"] = NoticeState.SENT
            return True

    def summary(self) -> Summary:
        outcomes = Counter(record.outcome for job_id in self.jobs if (record := self.job(job_id)) is not None)
        return Summary(
            accounts=sorted(self.accounts.values(), key=lambda a: a.user_id),
            refunds=outcomes[JobOutcome.REFUNDED],
            recorded=outcomes[JobOutcome.RECORDED],
            outcomes=dict(outcomes),
        )


@dataclass
class FakeJobQueues:
    """Job queues in memory: what was sent where; `fail` makes every send raise (nothing queued),
    `lose_answer` makes every send queue its message and then raise (SQS took it, the client timed out)."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    fail: Exception | None = None
    lose_answer: Exception | None = None

    def send(self, queue: str, body: str) -> str:
        if self.fail is not None:
            raise self.fail
        self.sent.append((queue, body))
        if self.lose_answer is not None:
            raise self.lose_answer
        return f"m-{len(self.sent)}"


@dataclass
class FakeParking:
    parked: dict[str, ParkedRecord] = field(default_factory=dict)

    def park(self, record: ParkedRecord) -> None:
        self.parked[record.message_id] = record


@dataclass
class FakeNotifier:
    sent: list[UserNotice] = field(default_factory=list)
    fail: Exception | None = None

    def publish(self, notice: UserNotice) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(notice)


@dataclass
class FakeAges:
    ages: dict[str, float] = field(default_factory=dict)
    fail: Exception | None = None

    def oldest(self, queues: Sequence[str], now: datetime) -> Mapping[str, float]:
        if self.fail is not None:
            raise self.fail
        return {q: self.ages[q] for q in queues if q in self.ages}
