"""Every numeric setting of every CLI command, driven through its
boundaries: below min, above max, zero and negative where out of range, and
a wrong type. Each is exit 2 with one line naming the setting, never a
traceback; the table of settings in docs/settings.md is current."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from agenticrec import cli
from agenticrec.graphspec import load_graphs

ROOT = Path(__file__).resolve().parents[1]


def _cases():
    for spec in load_graphs(plugins=False).values():
        for f in fields(spec.context):
            m = f.metadata
            if m.get("hidden") or not isinstance(f.default, int | float):
                continue
            if isinstance(f.default, bool):
                continue
            flag = m.get("cli") or f"--{f.name.replace('_', '-')}"
            lo, hi = m.get("ge"), m.get("le")
            bad = []
            if lo is not None:
                bad.append(("below min", lo - 1))
                if lo > 0:
                    bad.append(("zero", 0))
                if lo > -1:
                    bad.append(("negative", -1))
            if hi is not None:
                bad.append(("above max", hi + 1))
            bad.append(("wrong type", "abc"))
            for why, value in dict.fromkeys(bad):
                yield pytest.param(
                    spec.name,
                    f.name,
                    flag,
                    str(value),
                    id=f"{spec.name}-{f.name}-{why.replace(' ', '_')}",
                )


@pytest.mark.parametrize(("graph", "name", "flag", "value"), list(_cases()))
def test_an_out_of_range_setting_is_exit_2_and_one_line_naming_it(
    graph, name, flag, value, capsys, monkeypatch
):
    monkeypatch.setattr(sys, "argv", ["agenticrec", "run", graph, flag, value])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert name in err or flag in err, err


def test_every_numeric_setting_is_bounded():
    unbounded = [
        f"{spec.name}.{f.name}"
        for spec in load_graphs(plugins=False).values()
        for f in fields(spec.context)
        if isinstance(f.default, int | float)
        and not isinstance(f.default, bool)
        and (f.metadata.get("ge") is None or f.metadata.get("le") is None)
    ]
    assert not unbounded, f"settings without a documented range: {unbounded}"


def test_the_settings_table_in_docs_is_current():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_table.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
