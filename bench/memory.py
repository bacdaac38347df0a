"""Figure 5: start-up time and peak memory of the running bot, each in a fresh process.

The parent runs the fake Bot API and spawns ``python -m bench.memory`` on a working copy of a
database. The child starts the bot as ``casebot run`` does (``bot.service.Runner`` with its job
queue: ``getMe``, the database, ``initialize``, ``post_init``, the inbox, ``start``, long
polling; only the rate limiter is off and the delivery limits are high so that the outbox drains
in seconds) and reports when ``Runner.start`` has returned (polling). It then waits for the
repeating job's first run (the reminders due and the day's digests; run by hand when the bot
schedules it an interval later, see ``_child``) and for the outbox to be delivered, and reports
its peak resident memory (VmHWM).

Each database is started twice: first with today's digest not yet sent (``post_init`` catches
it up before polling: the digest is part of that start-up), then again (a plain restart).
Start-up counts from the parent's spawn to the child's polling, interpreter and imports
included; it is split at ``post_init``'s start and end (before: ``getMe``, opening the
database, ``initialize``; after: the inbox's leftovers, the scheduler, ``start``, polling).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Only the standard library at module level: the child's start-up counts the bot's imports.
REPO = Path(__file__).resolve().parent.parent
WATCH_SECONDS = 3.0  # how long a fresh start is watched for the job's first run


def vm(field: str) -> int:
    """A VmXXX line of /proc/self/status, in KiB (0 where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def child_run(db: Path, base_url: str, token: str, spawned: float, watch: bool) -> dict[str, Any]:
    """Start-up then the digest, in this process (run as ``python -m bench.memory``)."""
    t_main = time.time()
    return asyncio.run(_child(db, base_url, token, spawned, t_main, watch))


async def _child(db: Path, base_url: str, token: str, spawned: float, t_main: float,
                 watch: bool) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    from bench import ministry
    from bot.app import SERVICES, Services
    from bot.service import Runner

    t_imports = time.time()
    settings = ministry.settings_for(db, base_url=base_url, delivery=ministry.FAST_DELIVERY)
    started = time.monotonic()

    def clock() -> datetime:
        return ministry.NOW + timedelta(seconds=time.monotonic() - started)

    runner = Runner(settings, token, clock=clock, rate_limiter=False)
    app = runner.app
    post_init = app.post_init
    assert post_init is not None
    marks: dict[str, float] = {}

    async def timed_post_init(application: Any) -> None:  # the Runner calls it once, at start
        marks["post_init_start"] = time.time()
        await post_init(application)
        marks["post_init_end"] = time.time()

    app.post_init = timed_post_init
    await runner.start()
    t_ready = time.time()
    t_init, t_post_init = marks["post_init_start"], marks["post_init_end"]
    rss_ready = vm("VmRSS")
    services: Services = app.bot_data[SERVICES]
    # The repeating job: the reminders due, then the day's digests. Does the bot start it at
    # start-up? (Scheduled with first=0 in post_init, before the job queue starts, APScheduler
    # puts the first run one interval later.) Watch for its work (new events, digests) for a
    # few seconds; if none comes, run it by hand, as PTB's documentation suggests.
    assert app.job_queue is not None
    day = clock().astimezone(settings.tz).date().isoformat()
    last_event = await services.db.one("SELECT MAX(id) FROM events")
    since = int(last_event[0] or 0) if last_event else 0
    first_run_after: float | None = None
    while watch and time.time() - t_ready < WATCH_SECONDS:
        if await services.db.one("SELECT 1 FROM events WHERE id > ? LIMIT 1", (since,)) or (
                await services.db.one("SELECT 1 FROM digest_log WHERE day = ? LIMIT 1", (day,))):
            first_run_after = time.time() - t_ready
            break
        await asyncio.sleep(0.02)
    job = next(j for j in app.job_queue.jobs() if j.name == "reminders-and-digests")
    scheduled_in = (job.next_t - datetime.now(UTC)).total_seconds() if job.next_t else -1.0
    if first_run_after is None:
        await job.run(app)
    # Done when no reminder is due, every recipient has today's digest and the outbox is empty.
    day = clock().astimezone(settings.tz).date().isoformat()
    expected = len(await services.digests.recipients())
    while time.time() - t_ready < 300:
        digests = await services.db.one("SELECT COUNT(*) FROM digest_log WHERE day = ?", (day,))
        if (digests and digests[0] >= expected and not await services.cases.due_reminders(clock(), 1)
                and not await services.outbox.pending()):
            break
        await asyncio.sleep(0.05)
    t_drained = time.time()
    delivered = await services.db.one(  # this run's: the generated outbox holds the past's
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL AND created_at >= ?",
        (ministry.NOW.isoformat(),))
    digests = await services.db.one("SELECT COUNT(*) FROM digest_log")
    result = {
        "startup": t_ready - spawned, "interpreter": t_main - spawned, "imports": t_imports - t_main,
        "initialize": t_init - t_imports, "post_init": t_post_init - t_init,
        "polling": t_ready - t_post_init, "first_run_and_delivery": t_drained - t_ready,
        "first_run_after": first_run_after, "scheduled_in": scheduled_in,
        "interval": settings.reminders.interval_minutes * 60,
        "delivered": int(delivered[0]) if delivered else 0,
        "digests": int(digests[0]) if digests else 0, "rss_ready_kib": rss_ready,
        "rss_end_kib": vm("VmRSS"), "hwm_kib": vm("VmHWM"),
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    await runner.stop()
    return result


async def spawn(db: Path, base_url: str, token: str, *, watch: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    spawned = time.time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.memory", "--db", str(db), "--base-url", base_url,
        "--token", token, "--spawned", repr(spawned), *(["--watch"] if watch else []), cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 900)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.memory child failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def run(paths: dict[int, Path], work_dir: Path) -> list[Any]:
    """Largest beside smallest: a fresh start (today's digest due), then a restart."""
    from bench.common import Figure, mb, ms, ratio, size_label
    from bench.generate import working_copy
    from tests.fakebotapi import FakeBotAPI

    api = FakeBotAPI().start()
    base_url = api.base_url.removesuffix("/bot")
    runs: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    try:
        for n, path in sorted(paths.items()):
            copy = working_copy(path, work_dir, f"memory-{n}.sqlite3")
            fresh = await spawn(copy, base_url, api.token, watch=True)
            restart = await spawn(copy, base_url, api.token, watch=False)
            runs[n] = (fresh, restart)
        if api.server_errors:
            raise AssertionError(api.server_errors[-1])
    finally:
        api.stop()
    small, big = min(runs), max(runs)
    (f_big, r_big), (f_small, r_small) = runs[big], runs[small]
    same = big == small

    def ref(value: str) -> str:
        return "—" if same else f"{value} at {size_label(small)}"

    def first_run(r: dict[str, Any]) -> str:
        if r["first_run_after"] is not None:
            return f"{ms(r['first_run_after'])} after polling began"
        return f"not at start: scheduled in {r['scheduled_in']:.0f} s"

    def steps(r: dict[str, Any]) -> str:
        return (f"interpreter {ms(r['interpreter'])}, imports {ms(r['imports'])}, build, getMe, database, "
                f"initialize {ms(r['initialize'])}, post_init {ms(r['post_init'])}, inbox and polling "
                f"{ms(r['polling'])}")

    return [
        Figure(f"Start-up at {size_label(big)} cases, restart (spawn → polling; {steps(r_big)})",
               ms(r_big["startup"]), ref(ms(r_small["startup"])),
               "—" if same else ratio(r_big["startup"], r_small["startup"]), "≤ 2 s",
               r_big["startup"] <= 2.0, data={"fresh": f_big, "restart": r_big}),
        Figure(f"Start-up at {size_label(big)} cases when today's {f_big['digests']} digests are "
               "still to be sent (spawn → polling)",
               ms(f_big["startup"]), ref(ms(f_small["startup"])),
               "—" if same else ratio(f_big["startup"], f_small["startup"]), "≤ 2 s",
               f_big["startup"] <= 2.0, data={"fresh": f_big}),
        Figure("First run of the reminders-and-digests job after start-up (post_init schedules it)",
               first_run(f_big), f"interval {f_big['interval']:.0f} s", "—",
               f"at start (≤ {WATCH_SECONDS:.0f} s)", f_big["first_run_after"] is not None,
               data={"fresh": f_big}),
        Figure(f"Peak RSS (VmHWM), bot at {size_label(big)} cases through start-up, the first "
               f"job run (reminders, digests) and delivering {f_big['delivered']:,} messages",
               mb(f_big["hwm_kib"]), ref(mb(f_small["hwm_kib"])),
               "—" if same else ratio(f_big["hwm_kib"], f_small["hwm_kib"]), "≤ 200 MB",
               f_big["hwm_kib"] <= 200 * 1024, data={"fresh": f_big, "small": f_small}),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory",
                                     description="child of the start-up and memory benchmark")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--spawned", type=float, required=True)
    parser.add_argument("--watch", action="store_true", help="watch for the job's first run")
    args = parser.parse_args(argv)
    result = child_run(args.db, args.base_url, args.token, args.spawned, args.watch)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
