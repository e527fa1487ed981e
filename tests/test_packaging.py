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
    # plus the static checks ./lab test runs (import-linter, mypy), from the test extra
    checks = {_name(r) for r in pyproject["project"]["optional-dependencies"]["test"]} & {"import-linter", "mypy"}
    assert checks == {"import-linter", "mypy"}
    assert names == runtime | checks


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


_BAD_TRACE_PROFILE = (
    'description = "bad trace"\nsource = "assumption"\n'
    '[up]\nloss = { model = "trace", path = "bad.txt" }\n[down]\n'
)


def _cli_error_cases(tmp: Path) -> list[tuple[list[str], str]]:
    """(arguments, text the one error line must contain), for each kind of user error."""
    (tmp / "bad.txt").write_text("0\n1\nx\n")
    (tmp / "bad.toml").write_text(_BAD_TRACE_PROFILE)
    (tmp / "notaudio.wav").write_text("this is not a WAV file\n")
    return [
        (["simulate", "--transport", "pigeon"], "--transport"),  # argparse: bad choice
        (["simulate", "--bitrate", "lots"], "bitrate"),  # argparse: bad type
        (["simulate", "--no-such-flag"], "--no-such-flag"),
        (["no-such-command"], "no-such-command"),
        (["simulate", "--profile", "moon"], "moon"),  # unknown profile
        (["simulate", "--profile", str(tmp / "bad.toml")], "line 3"),  # malformed trace line
        (["simulate", "--clip", str(tmp / "notaudio.wav")], "notaudio.wav"),  # not a WAV
        (["simulate", "--clip", "no-such-clip"], "no-such-clip"),
        (["profiles", str(tmp / "bad.toml")], "line 3"),
        (["bench", "--only", "nothing"], "nothing"),
        (["simulate", "--out", str(tmp / "notaudio.wav" / "sub")], "--out"),  # a file in the way
    ]


def test_cli_errors_of_every_kind_are_one_line_exit_2(tmp_path, capsys):
    """In process through main() (the subprocess test above covers the process exit code): argparse
    usage errors and TranslabErrors alike give one stderr line naming the fault, exit 2, and no
    half-written output."""
    out = tmp_path / "o"
    for args, text in _cli_error_cases(tmp_path):
        if args[0] == "simulate":
            args = [*args, "--metrics", "none", *([] if "--out" in args else ["--out", str(out)])]
        try:
            code = main(args)
        except SystemExit as ex:  # argparse exits itself
            code = ex.code
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 2, (args, err)
        assert len(lines) == 1 and "Traceback" not in err, (args, err)
        assert text in lines[0] and "error" in lines[0], (args, lines)
        assert not (out / "summary.json").exists()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(\./lab \w+)", readme, flags=re.M)
    assert "./lab run" in commands and "./lab test" in commands  # the two commands
    ci = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln.strip() and not ln.startswith(("#", "set ", "cd "))]
    assert ci == ["./lab test"]
