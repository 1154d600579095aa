"""`make demo`: the whole system on the local cloud, in compressed time.

Three pools start idle (messaging keeps one worker, video and ai are at zero). A burst of jobs across
the plans lands; the scaler (the real handler, on its schedule) scales out from zero; instances pass
the launch readiness gate and run real workers; a few jobs fail for good into the DLQs; the queues
drain; scale-in drains workers through SIGTERM. A live view shows it; at the end one summary line,
and a PNG timeline per pool under out/.

The ai pool has a warm pool (Hibernated; `DEMO_WARM_POOLS`): its instances are prepared before the burst,
and a scale-out starts them faster than a cold launch. The ai pool also gets a schedule at the demo's
start (`demo_schedule`): a floor of one instance from the next minute on, for a short window. Both
show as lines of the demo's timeline, printed as they happen (`TimelineLines`).
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from devkit.configfile import load_parameter
from devkit.demo_plot import LOG_TIME, Timeline
from devkit.localcloud import stack
from devkit.localcloud.control import DEMO_DIR, down, fetch_status, up
from devkit.localcloud.emulation import WARMED_READY
from devkit.localcloud.report import JobReport, read_worker_logs
from devkit.localcloud.stack import LocalSettings, scale_down_window_seconds
from devkit.ownership import claim_state_dir, release_state_dir
from queue_scaler.bootstrap import producer
from queue_scaler.credits.domain.ledger import JobOutcome
from queue_scaler.credits.domain.refund import RefundPolicy
from queue_scaler.producer import Producer
from queue_scaler.scaling.adapters.memory import NullMetrics
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.shared.adapters import clients

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Jobs per plan and pool in the burst, and how long each runs.
BURST = {"video": {"enterprise": 6, "studio": 8, "pro": 16, "starter": 14, "free": 24}, "ai": {"pro": 12, "free": 18}}
MESSAGING_JOBS = 12
JOB_SECONDS = (0.5, 2.5)
FAIL_EVERY = 10  # one job in 10 fails on every attempt and ends in its DLQ
CREDITS = {"enterprise": 20, "studio": 12, "pro": 8, "starter": 4, "free": 0}
STARTING_CREDITS = 10_000
#: The demo's warm pool (the daemon's --warm-pool): ai, Hibernated, MinSize 0, MaxGroupPreparedCapacity 2
#: (two instances prepared at rest, fewer as ai scales out; AWS's default, MaxSize, would prepare four).
#: Hibernated: the local cloud keeps the worker process frozen (the instance's RAM), so a warm start skips
#: the worker's start, the part of a local launch a laptop makes slow (a Stopped pool restarts it).
DEMO_WARM_POOLS = ("ai=Hibernated:0:2",)
#: The demo's schedule: on this pool, a floor of `SCHEDULE_MINIMUM` for `SCHEDULE_WINDOW_SECONDS` (local
#: seconds) from the first whole minute at least `SCHEDULE_LEAD_SECONDS` after the demo starts.
SCHEDULE_POOL = "ai"
SCHEDULE_NAME = "demo-floor"
SCHEDULE_MINIMUM = 1
SCHEDULE_WINDOW_SECONDS = 15.0
SCHEDULE_LEAD_SECONDS = 3.0
#: The longest the burst waits for the warm pool to be prepared: a bound, met in seconds on an idle
#: machine; a busy 2-core CI runner boots the pool's two workers beside the rest of the fleet.
WARM_POOL_WAIT_SECONDS = 120.0


def job(pool: str, plan: str, index: int, rng: random.Random) -> dict[str, Any]:
    """One job of the burst, as `Producer.submit` takes it."""
    return {
        "job_id": f"{pool}-{plan}-{index}-{uuid.uuid4().hex[:6]}",
        "user_id": f"u-{rng.randint(1, 9)}",
        "plan": plan,
        "kind": f"{pool}.demo",
        "credits": CREDITS[plan],
        "payload": {"seconds": round(rng.uniform(*JOB_SECONDS), 2), "fail": index % FAIL_EVERY == FAIL_EVERY // 2},
    }


def submit_burst(jobs_producer: Producer, rng: random.Random, size: float = 1.0) -> JobReport:
    """Give every user credits, then submit the burst through the producer (`size` scales every count).

    Returns the report to fill: the submitted job ids, those whose reservation holds credits (the
    refundable ones) and those that fail on every attempt.
    """
    jobs = [
        job(pool, plan, i, rng)
        for pool, plans in BURST.items()
        for plan, count in plans.items()
        for i in range(round(count * size))
    ]
    jobs += [job("messaging", "pro", i, rng) for i in range(round(MESSAGING_JOBS * size))]
    now = datetime.now(UTC)
    for user in sorted({j["user_id"] for j in jobs}):
        jobs_producer.deposit(user, STARTING_CREDITS, f"demo-grant-{user}", now)
    report = JobReport({j["job_id"] for j in jobs}, failing={j["job_id"] for j in jobs if j["payload"]["fail"]})
    for spec in jobs:
        if jobs_producer.submit(**spec, now=datetime.now(UTC)).reserved:
            report.charged.add(spec["job_id"])
    return report


def demo_schedule(now: datetime) -> tuple[dict[str, Any], float]:
    """The demo's schedule (the schedule signal's settings, in UTC) and when its window ends (epoch
    seconds): a cron expression naming one minute (cron fires on whole minutes), the first at least
    `SCHEDULE_LEAD_SECONDS` from `now`."""
    lead = now + timedelta(seconds=SCHEDULE_LEAD_SECONDS)
    fire = lead.replace(second=0, microsecond=0)
    if fire < lead:
        fire += timedelta(minutes=1)
    schedule = {
        "name": SCHEDULE_NAME,
        "cron": f"{fire.minute} {fire.hour} {fire.day} {fire.month} *",
        "time_zone": "UTC",
        "minimum": SCHEDULE_MINIMUM,
        "window_seconds": SCHEDULE_WINDOW_SECONDS,
    }
    return schedule, fire.timestamp() + SCHEDULE_WINDOW_SECONDS


def add_schedule(endpoint_url: str, settings: LocalSettings, schedule: dict[str, Any]) -> None:
    """Give `SCHEDULE_POOL` the schedule in the scaler's configuration parameter (the operator's change;
    the local scaler reads it again within CONFIG_MAX_AGE_SECONDS)."""
    import boto3

    ssm = boto3.client("ssm", endpoint_url=endpoint_url, region_name=settings.region)
    name = stack.config_parameter(settings)
    config = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    for pool in config["pools"]:
        if pool["name"] == SCHEDULE_POOL:
            pool["signals"] = {**pool.get("signals", {}), "schedule": {"schedules": [schedule]}}
    value = ScalerConfig.model_validate(config).model_dump_json(exclude_defaults=False)
    ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


def start_cloud(state_dir: Path, settings: LocalSettings) -> tuple[dict[str, Any], float]:
    """The demo's local cloud, with its warm pool and its schedule. Returns its state and when the
    schedule's window ends (epoch seconds)."""
    state = up(state_dir, warm_pools=DEMO_WARM_POOLS)
    # The operator's side (the local cloud's admin key), before the producer's credentials.
    schedule, schedule_ends = demo_schedule(datetime.now(UTC))
    add_schedule(state["endpoint_url"], settings, schedule)
    return state, schedule_ends


@dataclass
class TimelineLines:
    """The timeline's lines, each printed once as it happens: an instance started from a warm pool (and
    how long it took against the cold starts so far), and each schedule the scaler's explanation names."""

    seen_starts: set[str] = field(default_factory=set)
    seen_schedules: set[tuple[str, str]] = field(default_factory=set)

    def new(self, status: dict[str, Any], elapsed: float) -> list[str]:
        lines: list[str] = []
        cold = [s for p in status["pools"].values() for _i, s, warm in p.get("starts", []) if not warm]
        for name, pool in status["pools"].items():
            for instance_id, seconds, warm in pool.get("starts", []):
                if not warm or instance_id in self.seen_starts:
                    continue
                self.seen_starts.add(instance_id)
                versus = f"cold starts so far: {sum(cold) / len(cold):.1f} s" if cold else "no cold start yet"
                lines.append(
                    f"t={elapsed:.0f}s {name}: {instance_id} started from the warm pool in {seconds:.1f} s ({versus})"
                )
        for outcome in status["scaler"]["last"]:
            decision = outcome.get("decision") or {}
            lines += self._schedules(outcome["pool"], decision.get("explanation", []), elapsed)
        return lines

    def _schedules(self, pool: str, explanation: list[str], elapsed: float) -> list[str]:
        lines = []
        for line in explanation:
            if line.startswith('schedule "') and (pool, line) not in self.seen_schedules:
                self.seen_schedules.add((pool, line))
                lines.append(f"t={elapsed:.0f}s {pool}: {line}")
        return lines

    def from_log(self, log: Iterable[str], started_at: float) -> list[str]:
        """The schedule lines the live view missed (a window shorter than a slow status poll), from the
        scaler's "decision" log records, each at its tick's time (`started_at`: epoch seconds)."""
        lines: list[str] = []
        for text in log:
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("message") == "decision" and "explanation" in record:
                at = datetime.strptime(record["timestamp"], LOG_TIME).timestamp() - started_at
                lines += self._schedules(record["pool"], record["explanation"], at)
        return lines


def warm_pools_ready(status: dict[str, Any]) -> bool:
    """Every warm pool holds its size in prepared instances only (Warmed:Stopped, Warmed:Running,
    Warmed:Hibernated): an empty pool the control loop has not filled yet is not ready."""
    return all(
        len(p["warm_pool"]) >= p["warm_pool_size"] and all(i["LifecycleState"] in WARMED_READY for i in p["warm_pool"])
        for p in status["pools"].values()
        if "warm_pool" in p
    )


def outcome_line(ledger: dict[str, Any], submitted: int) -> str:
    """The ledger's outcome counts, and whether they add up to the jobs submitted."""
    outcomes = ledger["outcomes"]
    counts = " ".join(f"{outcome}={outcomes.get(outcome, 0)}" for outcome in JobOutcome)
    total = sum(outcomes.values())
    return f"ledger outcomes: {counts} (sum {total} = {submitted} submitted: {total == submitted})"


def view(status: dict[str, Any], elapsed: float, submitted: int) -> Group:
    pools = Table(title=f"queue-scaler demo  t={elapsed:5.1f}s  jobs submitted: {submitted}")
    for column in ("pool", "desired", "in service", "instances", "backlog", "in flight", "DLQ"):
        pools.add_column(column)
    for name, pool in status["pools"].items():
        queues = [q for q in status["queues"].values() if q["pool"] == name]
        states = " ".join(
            i["state"].replace("Terminating", "Term").replace("Pending", "Pend") for i in pool["instances"]
        )
        pools.add_row(
            name,
            str(pool["desired"]),
            str(pool["in_service"]),
            states or "-",
            str(sum(q["visible"] for q in queues)),
            str(sum(q["in_flight"] for q in queues)),
            str(sum(q["dlq"] for q in queues)),
        )
    life = status["lifecycle"]
    decisions = Table(show_header=True, title="last decisions")
    decisions.add_column("pool")
    decisions.add_column("why")
    for outcome in status["scaler"]["last"]:
        decision = outcome.get("decision")
        why = decision["explanation"][-2] if decision and len(decision["explanation"]) > 1 else outcome.get("error", "")
        decisions.add_row(outcome["pool"], why)
    footer = (
        f"lifecycle actions: {life['completed']} completed, {life['pending']} pending, {life['timed_out']} timed out"
        f"   completed: {status['ledger']['outcomes'].get('completed', 0)}"
        f"   refunds: {status['ledger']['refunds']}"
        f"   scaler invocations: {status['scaler']['invocations']} ({status['scaler']['errors']} errors)"
    )
    return Group(pools, decisions, footer)


def patient_status(state: dict[str, Any], seconds: float = 60.0) -> dict[str, Any]:
    """The local cloud's status, asked again while a busy machine keeps it from answering in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fetch_status(state)
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise


#: Seconds between two progress lines when the output is not a terminal.
PROGRESS_SECONDS = 10.0


def progress_line(status: dict[str, Any], elapsed: float, submitted: int) -> str:
    """One line of what the live view shows: per pool desired, in service and backlog; jobs done."""
    pools = []
    for name, pool in status["pools"].items():
        backlog = sum(q["visible"] + q["in_flight"] for q in status["queues"].values() if q["pool"] == name)
        pools.append(f"{name} {pool['in_service']}/{pool['desired']} backlog {backlog}")
    completed = status["ledger"]["outcomes"].get("completed", 0)
    return f"demo t={elapsed:.0f}s: " + ", ".join(pools) + f" (in service/desired); jobs {completed}/{submitted} done"


def settled(status: dict[str, Any]) -> bool:
    """Queues and DLQs drained (dead letters refunded), pools back at their minimum, no lifecycle action open,
    warm pools prepared again."""
    queues_empty = all(q["visible"] == 0 and q["in_flight"] == 0 and q["dlq"] == 0 for q in status["queues"].values())
    at_minimum = all(
        p["desired"] == (1 if name == "messaging" else 0) and len(p["instances"]) == p["desired"]
        for name, p in status["pools"].items()
    )
    return queues_empty and at_minimum and status["lifecycle"]["pending"] == 0 and warm_pools_ready(status)


def passed(report: JobReport, status: dict[str, Any]) -> bool:
    """`make demo` succeeds: no job lost or run twice, every job that failed for good refunded, books right."""
    ledger = status["ledger"]
    refunds_right = ledger["refunds"] == len(report.failing & report.charged) and not ledger["problems"]
    # Every submitted job settled, each counted once by its outcome in the ledger.
    outcomes = ledger["outcomes"]
    adds_up = sum(outcomes.values()) == len(report.submitted) and not outcomes["pending"] and not outcomes["running"]
    return not report.lost and not report.duplicates and refunds_right and adds_up


def _local_credentials(region: str) -> dict[str, str]:
    """This process's AWS settings: the local cloud's region and its admin key (the operator's side).
    Returns the environment as it was, for `_stop`."""
    caller = dict(os.environ)
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    os.environ.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
    os.environ.pop("AWS_SESSION_TOKEN", None)
    return caller


def _stop(state_dir: Path, caller_environment: dict[str, str]) -> None:
    """Stop the demo's local cloud, and give the process its caller's environment and fresh clients back."""
    down(state_dir)
    release_state_dir(state_dir)
    os.environ.clear()
    os.environ.update(caller_environment)
    clients.clear()


def run(
    console: Console,
    *,
    state_dir: Path = DEMO_DIR,
    out_dir: Path = Path("out"),
    timeout: float = 170.0,
    seed: int = 7,
    size: float = 1.0,
) -> tuple[JobReport, dict[str, Any]]:
    """Play the demo; returns the job report and the final status. `size` scales the burst."""
    claim_state_dir(state_dir)
    settings = LocalSettings()
    # This process's own clients (the producer's ledger and queues) talk only to the local cloud's
    # endpoint, as the producer role (the stack's ProducerPolicy, as a product holds it on AWS): the
    # local cloud enforces IAM and knows no other key (whatever the shell exported).
    # The producer's credentials are this run's: the caller's environment comes back at the end.
    caller_environment = _local_credentials(settings.region)
    rng = random.Random(seed)  # noqa: S311 - demo workload, not security
    try:
        # Inside the try: a cloud that fails to start still gives its state directory back.
        state, schedule_ends = start_cloud(state_dir, settings)
        # The producer runs as a product would: under the stack's producer policy alone. Clients cached
        # by an earlier run in this process (another local cloud, maybe on the same port) hold other
        # credentials: this run's clients are made afresh.
        os.environ.update(state["producer"])
        clients.clear()
        # The producer a product would use, routing by the same pool configuration the scaler reads.
        jobs_producer = producer(
            ledger_table=stack.ledger_table(settings),
            config=load_parameter(stack.config_parameter(settings), state["endpoint_url"]),
            metrics=NullMetrics(),
            policy=RefundPolicy(),
            endpoint_url=state["endpoint_url"],
        )
        timeline = Timeline(scale_down_window=scale_down_window_seconds(settings))
        started = time.monotonic()
        started_at = time.time()  # the scaler's log records are timed by the wall clock
        report = JobReport(set())
        lines = TimelineLines()
        status = patient_status(state)
        next_line = 0.0
        with Live(view(status, 0, 0), console=console, refresh_per_second=2) as live:
            while True:
                elapsed = time.monotonic() - started
                # The burst lands once the warm pool is prepared (as a warm pool is meant to be: before the
                # work arrives), or after WARM_POOL_WAIT_SECONDS whatever it holds.
                if (
                    not report.submitted
                    and elapsed >= 3
                    and (warm_pools_ready(status) or elapsed >= WARM_POOL_WAIT_SECONDS)
                ):
                    report = submit_burst(jobs_producer, rng, size)
                    timeline.burst_at = elapsed
                try:
                    status = fetch_status(state)
                except TimeoutError:
                    # A busy machine (the local cloud shares it with its workers): this frame is skipped,
                    # the next one asks again; the demo's own timeout still bounds the whole run.
                    time.sleep(1)
                    continue
                timeline.add(elapsed, status)
                for line in lines.new(status, elapsed):
                    console.print(line)
                live.update(view(status, elapsed, len(report.submitted)))
                if not console.is_terminal and elapsed >= next_line:
                    # Piped or logged (CI), the live view shows only at the end: a line now and then instead,
                    # dated when the status arrived (on a busy machine a status can take seconds to answer).
                    console.print(progress_line(status, time.monotonic() - started, len(report.submitted)))
                    next_line = elapsed + PROGRESS_SECONDS
                # Settled, and past the schedule's window (whose floor shows in the timeline).
                if report.submitted and settled(status) and elapsed > 10 and time.time() > schedule_ends:
                    break
                if elapsed > timeout:
                    console.print(f"[red]demo: not settled after {timeout:.0f} s[/]")
                    break
                time.sleep(1)
        # The live view's last line ends here: what follows starts on a line of its own.
        console.line()
        report.dead_lettered = set(status["dead_lettered_jobs"])
    finally:
        _stop(state_dir, caller_environment)
    read_worker_logs(state_dir / "instances", report)
    # The scaler's decisions, each at its tick's time: what the timeline's scale-down window is drawn from.
    read_log(console, state_dir / "localcloud.log", timeline, lines, started_at)
    for path in timeline.plot(out_dir):
        console.print(f"timeline: {path}")
    print_summary(console, report, status)
    return report, status


def read_log(console: Console, path: Path, timeline: Timeline, lines: TimelineLines, started_at: float) -> None:
    """The scaler's decisions from the local cloud's log: the timeline's scale-down window, and the
    schedule lines the live view missed."""
    with path.open(encoding="utf-8", errors="replace") as log:
        timeline.read_decisions(log, started_at)
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in lines.from_log(log, started_at):
            console.print(line)


def print_summary(console: Console, report: JobReport, status: dict[str, Any]) -> None:
    """The demo's last lines: the ledger's check, its outcomes, and one line for the whole run."""
    instance_seconds = sum(p["instance_seconds"] for p in status["pools"].values())
    ledger = status["ledger"]
    console.print(
        f"ledger: reserved={ledger['reserved']} refunded={ledger['refunded']} charged={ledger['charged']} "
        f"(reserved - refunded = charged: {ledger['reserved'] - ledger['refunded'] == ledger['charged']}), "
        f"problems={ledger['problems'] or 'none'}"
    )
    console.print(outcome_line(ledger, len(report.submitted)))
    console.print(
        f"demo: jobs={len(report.submitted)} completed={report.completed} dead_lettered={len(report.dead_lettered)} "
        f"lost={len(report.lost)} duplicates={len(report.duplicates)} wait_p95={report.wait_p95():.1f}s "
        f"instance_seconds={instance_seconds:.0f} refunded={ledger['refunds']}"
    )
