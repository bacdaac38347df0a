"""The lock files agree with pyproject.toml: a dependency added, dropped or re-bounded there without
running ``scripts/lock`` fails here (and so in CI), before a fresh machine installs something else."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "casebot"
HINT = "run scripts/lock and commit requirements.lock and requirements-test.lock"
PYTHONS = ("3.11", "3.12", "3.13")


@dataclass
class Pin:
    version: Version
    marker: Marker | None
    via: set[str] = field(default_factory=set)


def read_lock(path: Path) -> dict[str, list[Pin]]:
    """name → its pins (one per marker, e.g. numpy for Python < 3.12 and for 3.12 on)."""
    pins: dict[str, list[Pin]] = {}
    last: Pin | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = re.match(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if entry:
            name, version, marker = entry.groups()
            last = Pin(Version(version), Marker(marker) if marker else None)
            pins.setdefault(canonicalize_name(name), []).append(last)
            continue
        # "    # via aiohttp", or "    # via" and then "    #   aiohttp" a line
        via = re.match(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9._-]+)", line)
        if via and last is not None and via.group(1) != "via":
            last.via.add(canonicalize_name(via.group(1)))
    return pins


def applies(pin: Pin, python: str) -> bool:
    env = {"python_version": python, "python_full_version": python + ".0",
           "sys_platform": "linux", "platform_python_implementation": "CPython"}
    return pin.marker is None or pin.marker.evaluate(env)


def declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = [Requirement(r) for r in project["dependencies"]]
    test = [Requirement(r) for r in project["optional-dependencies"]["test"]]
    return runtime, test


def check(requirements: list[Requirement], lock: dict[str, list[Pin]], name: str) -> list[str]:
    problems = []
    for req in requirements:
        pins = lock.get(canonicalize_name(req.name))
        if not pins:
            problems.append(f"{req.name} is in pyproject.toml but not in {name}")
            continue
        for python in PYTHONS:
            chosen = [p for p in pins if applies(p, python)]
            if len(chosen) != 1 or chosen[0].version not in req.specifier:
                problems.append(f"{name}: {req.name} on Python {python}: locked "
                                f"{[str(p.version) for p in chosen]}, pyproject.toml asks {req.specifier}")
    return problems


def direct(lock: dict[str, list[Pin]]) -> set[str]:
    """What the lock says the project itself asked for."""
    return {name for name, pins in lock.items() if any(PROJECT in p.via for p in pins)}


def test_every_dependency_is_locked_at_a_version_pyproject_allows() -> None:
    runtime, test = declared()
    full = read_lock(ROOT / "requirements-test.lock")
    bot = read_lock(ROOT / "requirements.lock")
    problems = check(runtime + test, full, "requirements-test.lock")
    problems += check(runtime, bot, "requirements.lock")
    assert not problems, "\n".join(problems) + f"\n{HINT}"


def test_no_lock_holds_a_dependency_pyproject_dropped() -> None:
    runtime, test = declared()
    full = read_lock(ROOT / "requirements-test.lock")
    bot = read_lock(ROOT / "requirements.lock")
    names = {canonicalize_name(r.name) for r in runtime}
    assert direct(bot) == names, f"{sorted(direct(bot) ^ names)}; {HINT}"
    names |= {canonicalize_name(r.name) for r in test}
    assert direct(full) == names, f"{sorted(direct(full) ^ names)}; {HINT}"


def test_the_runtime_lock_is_the_test_lock_without_the_test_tools() -> None:
    full = read_lock(ROOT / "requirements-test.lock")
    bot = read_lock(ROOT / "requirements.lock")
    for name, pins in bot.items():
        assert name in full, f"{name}: {HINT}"
        for python in PYTHONS:  # the same version wherever both install it
            mine = {p.version for p in pins if applies(p, python)}
            theirs = {p.version for p in full[name] if applies(p, python)}
            assert not mine or mine == theirs, f"{name} on Python {python}: {HINT}"
    _runtime, test = declared()
    for req in test:
        assert canonicalize_name(req.name) not in bot, f"{req.name} is a test tool: {HINT}"


def test_every_pin_has_hashes() -> None:
    for path in (ROOT / "requirements.lock", ROOT / "requirements-test.lock"):
        text = path.read_text(encoding="utf-8")
        entries = re.findall(r"^[A-Za-z0-9._-]+==[^\n]*\n((?:\s+--hash=[^\n]*\n)*)", text, re.M)
        assert entries and all(e.strip() for e in entries), f"{path.name}: pins without hashes; {HINT}"


def test_the_check_sees_a_dependency_added_without_a_new_lock(tmp_path: Path) -> None:
    """The check itself: a new dependency, or a bound the locked version does not meet, fails."""
    full = read_lock(ROOT / "requirements-test.lock")
    assert check([Requirement("leftpad>=1.0")], full, "lock") == [
        "leftpad is in pyproject.toml but not in lock"]
    assert check([Requirement("babel>=99")], full, "lock")
    assert not check([Requirement("babel>=2.19")], full, "lock")
