"""Set-up files agree with each other and the CLI behaves as documented."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from translab.cli import COMMAND_MODULES, main

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_runtime_dependencies_as_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_name(r) for r in pyproject["project"]["dependencies"]}
    text = (ROOT / "environment.yml").read_text()
    deps = text.split("\ndependencies:\n", 1)[1]
    names = set()
    for line in deps.splitlines():
        m = re.match(r"^\s+- (?!pip:?$|python\b|-e )([A-Za-z0-9_.-]+)", line)
        if m:
            names.add(_name(m.group(1)))
    assert names == runtime


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["--help"])
    assert ex.value.code == 0
    out = capsys.readouterr().out
    for module in COMMAND_MODULES:
        assert module.rsplit(".", 1)[1].replace("_", "-") in out


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_every_command_has_help(module, capsys):
    name = module.rsplit(".", 1)[1].replace("_", "-")
    with pytest.raises(SystemExit) as ex:
        main([name, "--help"])
    assert ex.value.code == 0
    assert "usage: translab" in capsys.readouterr().out


def test_cli_error_is_one_line_without_traceback_and_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "translab.cli", "simulate", "--bitrate", "3k", "--metrics", "none"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == ["translab simulate: error: bitrate: 3000 is not allowed (allowed: 6000 to 510000 bit/s)"]
