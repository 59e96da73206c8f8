"""The installed package is one namespace, ``ledger``: the top-level folders
``projections/`` and ``api/`` install as ``ledger.projections`` and
``ledger.api``, never as packages of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def imports_in_a_fresh_interpreter(module: str, where: Path) -> bool:
    """Whether ``module`` imports in a new interpreter started in ``where``
    (outside the repository, whose folders would otherwise be on the path)."""
    outcome = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=where, capture_output=True
    )
    return outcome.returncode == 0


@pytest.mark.parametrize("module", ["api", "projections"])
def test_no_generic_top_level_package_is_installed(module: str, tmp_path: Path) -> None:
    assert not imports_in_a_fresh_interpreter(module, tmp_path)


@pytest.mark.parametrize(
    "module",
    ["ledger.api.cli.app", "ledger.api.http.app", "ledger.projections.registry"],
)
def test_the_entry_points_and_projections_install_under_ledger(
    module: str, tmp_path: Path
) -> None:
    assert imports_in_a_fresh_interpreter(module, tmp_path)
