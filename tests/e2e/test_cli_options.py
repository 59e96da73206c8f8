"""The command line's own shape: every option and argument says what it
takes (a business date, a ledger position or a recording time where it
takes one), and ``ledger --help`` starts without loading what only some
verbs need (the web framework, the PDF and spreadsheet writers), nor a
quick read the aggregates that only writers need."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer._click import Context as ClickContext
from typer.core import TyperGroup

from ledger.api.cli.app import VERBS, app
from ledger.bootstrap import open_database, open_ledger
from ledger.domain.messages import CHINESE, translate, use_language
from ledger.engine import ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from tests.factories import record_all, small_city


def parameters(command: Any, path: str = "ledger") -> Iterator[tuple[str, Any]]:
    """Every option and argument of ``command`` and of the verbs under it
    (which the root builds when asked for them)."""
    for parameter in command.params:
        yield path, parameter
    ctx = ClickContext(command)
    for name in command.list_commands(ctx) if isinstance(command, TyperGroup) else ():
        yield from parameters(command.get_command(ctx, name), f"{path} {name}")


EVERY_PARAMETER = list(parameters(typer.main.get_command(app)))


def test_the_walk_reaches_every_verb() -> None:
    verbs = {path for path, _ in EVERY_PARAMETER}
    assert {"ledger query hours", "ledger audit events", "ledger keys create"} <= verbs


@pytest.mark.parametrize("module_name", sorted(set(VERBS.values())))
def test_the_table_of_verbs_names_every_command_of_its_modules(
    module_name: str,
) -> None:
    module = importlib.import_module(f"ledger.api.cli.{module_name}")
    built = typer.main.get_command(module.app)
    named = {verb for verb, module in VERBS.items() if module == module_name}
    if not isinstance(built, TyperGroup):
        assert named == {built.name}
    elif named != set(built.commands):
        (group,) = named  # the module's app is one verb, a group of sub-verbs
        assert group not in built.commands


@pytest.mark.parametrize(
    ("verb", "parameter"),
    EVERY_PARAMETER,
    ids=[f"{path} {p.name}" for path, p in EVERY_PARAMETER],
)
def test_every_option_and_argument_has_help(verb: str, parameter: Any) -> None:
    assert (parameter.help or "").strip(), f"{verb}: {parameter.name} has no help"


# Options named for a moment or a place in the ledger, and what their help
# must begin with to say which kind it takes.
KINDS = ("Business date", "Business time", "Ledger position", "Recording time")
MOMENTS = {"as_of", "through", "since", "until", "recorded_since", "recorded_until"}
POSITIONS = {"after", "position"}


@pytest.mark.parametrize(
    ("verb", "parameter"),
    [(v, p) for v, p in EVERY_PARAMETER if p.name in MOMENTS | POSITIONS],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_an_option_of_a_date_or_position_says_which_it_takes(
    verb: str, parameter: Any
) -> None:
    assert (parameter.help or "").startswith(KINDS), f"{verb}: {parameter.name}"


# The same kinds in Chinese, as ``LANG=zh_CN.UTF-8 ledger … --help`` shows them.
CHINESE_KINDS = ("业务日期", "业务时间", "台账位置", "记录时间")


@pytest.mark.parametrize(
    ("verb", "parameter"),
    [(v, p) for v, p in EVERY_PARAMETER if p.name in MOMENTS | POSITIONS],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_in_chinese_too_an_option_of_a_date_or_position_says_which_it_takes(
    verb: str, parameter: Any
) -> None:
    with use_language(CHINESE):
        assert translate(parameter.help).startswith(CHINESE_KINDS), verb


HEAVY = ("fastapi", "uvicorn", "openpyxl", "reportlab", "segno", "pypdf",
         "prometheus_client", "alembic", "sqlalchemy", "cryptography")  # fmt: skip


def test_ledger_help_loads_none_of_what_only_some_verbs_need() -> None:
    shown = help_in_a_new_process(["--help"])
    assert "Usage" in shown.stdout
    assert shown.stdout.strip().splitlines()[-1] == "loaded:"


def test_a_verb_help_loads_none_of_them_either() -> None:
    shown = help_in_a_new_process(["certificate", "--help"])
    assert "--as-of" in shown.stdout
    assert shown.stdout.strip().splitlines()[-1] == "loaded:"


def help_in_a_new_process(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    """``ledger ARGUMENTS`` (a help page) in a fresh interpreter, its output
    ending with a line naming which of ``HEAVY`` it loaded."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from ledger.api.cli.app import app\n"
            "try:\n"
            f"    app({arguments!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            f"print('loaded:', *sorted(m for m in {HEAVY!r} if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )


# What only writers need: the aggregates (their event classes cost a quick
# read a tenth of its start) and rich (only progress bars and refusals).
WRITERS_ONLY = ("ledger.domain.volunteers", "ledger.domain.activities",
                "ledger.domain.orders", "ledger.domain.venues", "rich")  # fmt: skip


def test_a_quick_read_loads_none_of_what_only_writers_need(tmp_path: Path) -> None:
    # Given a ledger of a small city, projected
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    database = open_database(url)
    record_all(open_ledger(database, tmp_path / "keys"), small_city())
    ProjectionEngine(database, ALL_PROJECTIONS).catch_up()
    database.dispose()
    # When a volunteer's hours are read in a new process, as `ledger` starts
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from ledger.api.cli.app import run\n"
            f"sys.argv = ['ledger', '--db', {url!r}, 'query', 'hours', 'V1']\n"
            "try:\n"
            "    run()\n"
            "finally:\n"
            f"    print('loaded:', *sorted(m for m in {WRITERS_ONLY!r} "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "LEDGER_KEY_DIRECTORY": str(tmp_path / "keys")},
    )
    # Then it answers, and loaded neither the aggregates nor rich
    assert read.returncode == 0, read.stderr
    assert '"volunteer_id": "V1"' in read.stdout
    assert read.stdout.strip().splitlines()[-1] == "loaded:"


def test_the_command_as_installed_keeps_its_exit_code(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.db"
    arguments = ["--db", f"sqlite:///{missing}", "query", "hours", "V1"]
    read = subprocess.run(
        [sys.executable, "-m", "ledger.api.cli.app", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "LANG": "en_US.UTF-8", "LC_ALL": ""},
    )
    assert read.returncode == 4
    assert read.stderr.startswith(f"no ledger at {missing}")
