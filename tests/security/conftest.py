"""Security and reliability suite: the `security` marker, the world fixture and the figures table.

Tests record what they did through the `figures` fixture; `pytest_terminal_summary` prints the table
at the end of the run and `pytest_sessionfinish` fails the session if any loss or duplicate was recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.e2e.conftest import client, emulator  # noqa: F401 - the emulator fixtures, for the process tests
from tests.security.world import start_world
from tests.support.client import BotClient

HERE = Path(__file__).resolve().parent


@dataclass
class Figures:
    """What the security tests did and found, summed over the run."""

    scenarios: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    updates: int = 0
    acknowledged: int = 0
    found_in_db: int = 0
    duplicates: int = 0
    losses: int = 0
    problems: list[str] = field(default_factory=list)
    known_holes: list[str] = field(default_factory=list)

    def scenario(self) -> None:
        """One scenario (test) ran."""
        self.scenarios += 1

    def fault(self, kind: str, count: int = 1) -> None:
        """A fault was injected (duplicate update, stale button, forged callback, injected text, …)."""
        self.faults[kind] = self.faults.get(kind, 0) + count

    def check(self, kind: str, count: int = 1) -> None:
        """Things verified in bulk (messages parsed, log records scanned, spreadsheet cells inspected)."""
        self.checks[kind] = self.checks.get(kind, 0) + count

    def update(self) -> None:
        """One Telegram update was fed to the bot."""
        self.updates += 1

    def answers(self, acknowledged: int, found: int, where: str) -> None:
        """Answers the bot acknowledged vs found in the database; a shortfall is a loss."""
        self.acknowledged += acknowledged
        self.found_in_db += found
        if found < acknowledged:
            self.losses += acknowledged - found
            self.problems.append(f"{where}: {acknowledged - found} acknowledged answer(s) not in the DB")

    def known_hole(self, what: str) -> None:
        """A loss or duplicate shown by a test marked xfail(strict=True): listed, not counted as a new loss."""
        self.known_holes.append(what)

    def duplicate(self, count: int, where: str) -> None:
        """Rows (submissions, messages, answers) that exist more often than they should."""
        if count > 0:
            self.duplicates += count
            self.problems.append(f"{where}: {count} duplicate(s)")


FIGURES_KEY = pytest.StashKey[Figures]()


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    """One Figures object per run."""
    config.stash[FIGURES_KEY] = Figures()
    _CONFIG[:] = [config]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/security carries the `security` marker."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.security)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """The run's figures, for the test to record what it did."""
    return request.config.stash[FIGURES_KEY]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Every test of the suite that ran (passed, failed or xfailed) is one scenario."""
    if report.when == "call" and HERE in Path(str(report.fspath)).resolve().parents:
        stats = _CONFIG[0].stash[FIGURES_KEY] if _CONFIG else None
        if stats is not None:
            stats.scenario()


@pytest.fixture
async def world(engine: Engine, database_url: str, figures: Figures) -> AsyncIterator[BotClient]:
    """The two-commune world with everyone signed up (their /start updates are counted)."""
    async for w in start_world(engine, database_url, figures=figures):
        yield w


def _table(stats: Figures) -> list[str]:
    faults = sum(stats.faults.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(stats.faults.items())) or "none"
    rows = [
        ("scenarios run", str(stats.scenarios)),
        ("faults injected", f"{faults} ({detail})"),
        ("checks made", ", ".join(f"{k} {v}" for k, v in sorted(stats.checks.items())) or "none"),
        ("updates processed", str(stats.updates)),
        ("answers acknowledged / found in DB", f"{stats.acknowledged} / {stats.found_in_db}"),
        ("duplicates", str(stats.duplicates)),
        ("losses", str(stats.losses)),
        ("known holes (xfail, reported)", str(len(stats.known_holes))),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"| {'figure'.ljust(width)} | value", f"|-{'-' * width}-|------"]
    lines += [f"| {k.ljust(width)} | {v}" for k, v in rows]
    return lines + [f"! {p}" for p in stats.problems] + [f"~ known hole: {h}" for h in stats.known_holes]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Print the reliability and security figures when any scenario of the suite ran."""
    stats = config.stash.get(FIGURES_KEY, None)
    if stats is None or stats.scenarios == 0:
        return
    terminalreporter.section("reliability and security figures")
    for line in _table(stats):
        terminalreporter.write_line(line)
    if stats.losses or stats.duplicates:
        terminalreporter.write_line("FAILED: losses or duplicates were recorded", red=True, bold=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A loss or a duplicate fails the run even if every assertion passed."""
    stats = session.config.stash.get(FIGURES_KEY, None)
    if stats is not None and (stats.losses or stats.duplicates) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
