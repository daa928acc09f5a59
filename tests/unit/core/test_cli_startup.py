"""`vmlab --help` builds no command group: the root lists stand-ins from vmlab/cli/listing.py and imports
a group's module when it is run (cli/lazy.py). These tests hold the three promises that makes: the
listing is what Typer itself would print, a command is still there when the listing misses it, and
start-up imports no heavy library. Timing is the benchmark's (tests/perf/test_help_startup.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vmlab.cli import lazy, listing
from vmlab.cli.main import _root, all_registrars, app
from vmlab.labs.catalog import cli_registrars

runner = CliRunner()
SRC = Path(__file__).resolve().parents[3] / "src"
HEAVY = ["pydantic", "docker", "libvirt", "matplotlib"]  # what common.md says stays out of start-up


def _modules_after(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, list[str]]:
    """Run `code` with argv ARGS in a fresh interpreter; its exit code, stdout and, printed at exit,
    the vmlab and heavy modules it had imported."""
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print('MODULES=' + json.dumps(sorted(m for m in sys.modules "
        f"if m.startswith('vmlab.') or m.split('.')[0] in {HEAVY!r})), file=sys.stderr))\n"
        f"sys.argv = ['vmlab', *{list(args)!r}]\n" + code
    )
    full_env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    p = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=full_env, check=False
    )
    line = next(x for x in p.stderr.splitlines() if x.startswith("MODULES="))
    return p.returncode, p.stdout, json.loads(line.removeprefix("MODULES="))


def test_importing_main_loads_no_heavy_library() -> None:
    code, _, modules = _modules_after("import vmlab.cli.main")
    assert code == 0
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []


def test_help_imports_no_group_and_no_heavy_library() -> None:
    code, out, modules = _modules_after("from vmlab.cli.main import main; main()", "--help")
    assert code == 0 and "kvm" in out and "grade" in out
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
    # no command module at all: the package, main, the lazy group and its listing
    assert [m for m in modules if m.endswith(".cli") or m.startswith("vmlab.cli.")] == [
        "vmlab.cli",
        "vmlab.cli.lazy",
        "vmlab.cli.listing",
        "vmlab.cli.main",
    ]


def test_running_a_group_imports_that_group_only() -> None:
    code, out, modules = _modules_after("from vmlab.cli.main import main; main()", "kvm", "--help")
    assert code == 0 and "programs" in out  # a command of the kvm group (kvmapi/cli.py)
    assert "vmlab.kvmapi.cli" in modules
    assert not {"vmlab.isa.cli", "vmlab.hllvm.cli", "vmlab.cli.grade", "vmlab.cli.lifecycle"} & set(modules)


def test_the_listing_is_what_the_registrars_add(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index is current: regenerate it with `python -m vmlab.cli.reindex` when this fails."""
    monkeypatch.delenv("VMLAB_LABS", raising=False)
    fresh = lazy.listing(all_registrars())
    assert fresh == listing.LISTING, "src/vmlab/cli/listing.py is stale: run `python -m vmlab.cli.reindex`"
    assert lazy.render(fresh) == (SRC / "vmlab" / "cli" / "listing.py").read_text()


def _eager_app() -> typer.Typer:
    """What main.py built before the lazy group: every registrar run on a plain Typer app."""
    eager = typer.Typer(
        name="vmlab",
        help="Learn how virtual machines work by measuring them.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    eager.callback()(_root)
    for reg in all_registrars():
        lazy.registrar_function(reg.spec)(eager)
    return eager


def test_help_is_what_typer_prints_for_the_eager_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VMLAB_LABS", raising=False)
    got = runner.invoke(app, ["--help"])
    want = runner.invoke(_eager_app(), ["--help"])
    assert got.exit_code == want.exit_code == 0
    assert got.stdout == want.stdout
    for group in ("kvm", "grade", "lab"):  # and a group's own help, once it is built
        got_group = runner.invoke(app, [group, "--help"])
        assert got_group.stdout == runner.invoke(_eager_app(), [group, "--help"]).stdout


def test_a_command_the_listing_misses_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = "vmlab.cli.lifecycle:register"
    without_ssh = tuple(e for e in listing.LISTING[spec] if e[0] != "ssh")
    assert len(without_ssh) == len(listing.LISTING[spec]) - 1
    monkeypatch.setitem(listing.LISTING, spec, without_ssh)
    assert " ssh " not in runner.invoke(app, ["--help"]).stdout  # the listing is what help shows
    result = runner.invoke(app, ["ssh", "--help"])
    assert result.exit_code == 0 and "interactive shell" in result.stdout
    typo = runner.invoke(app, ["grad"])
    assert typo.exit_code == 2 and "Did you mean 'grade'?" in typo.stderr


def _lab(root: Path, name: str, lab_table: str, rest: str = "") -> Path:
    (root / name).mkdir(parents=True)
    toml = root / name / "lab.toml"
    toml.write_text(f'[lab]\nname = "{name}"\n{lab_table}\n{rest}')
    return toml


HELLO = '''import typer

def hi() -> None:
    """Say hello."""
    print("hello from a lab of another root")

def register(app: typer.Typer) -> None:
    group = typer.Typer(help="A lab's group the listing does not know.", no_args_is_help=True)
    group.command("hi")(hi)
    group.command("there")(hi)
    app.add_typer(group, name="hello")
'''


def test_a_lab_from_another_root_brings_its_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "hello_cli.py").write_text(HELLO)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    _lab(tmp_path / "labs", "hello", 'cli = "hello_cli:register"')
    monkeypatch.setenv("VMLAB_LABS", str(tmp_path / "labs"))
    help_ = runner.invoke(app, ["--help"])
    assert help_.exit_code == 0
    assert "hello" in help_.stdout and "A lab's group the listing does not know." in help_.stdout
    assert " kvm " not in help_.stdout  # the labs of VMLAB_LABS only: kvm-api is not among them
    ran = runner.invoke(app, ["hello", "hi"])
    assert ran.exit_code == 0 and ran.stdout == "hello from a lab of another root\n"


def test_a_lab_whose_cli_does_not_import_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lab(tmp_path / "labs", "gone", 'cli = "vmlab_no_such_module_h4:register"')
    monkeypatch.setenv("VMLAB_LABS", str(tmp_path / "labs"))
    code = "import sys; sys.argv = ['vmlab', '--help']; from vmlab.cli.main import main; main()"
    env = {**os.environ, "VMLAB_LABS": str(tmp_path / "labs"), "PYTHONPATH": str(SRC)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 0 and "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: lab gone: its commands")
    assert "No module named 'vmlab_no_such_module_h4'" in lines[0]


# ---- the [lab] table, read alone -----------------------------------------------------------------


def test_the_lab_table_is_read_without_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "labs"
    # a fault after [lab]: start-up does not read that far (`lab ls` and the lab's commands say it)
    _lab(root, "a", 'cli = "a.cli:register"  # the group', "[[checks]]\nid = \n")
    # a multi-line array in [lab] holding a line that starts with "[": the cut is unclosed, the whole
    # file is read, and the table is the same
    _lab(root, "b", 'tools = [\n["gcc", "x"],\n]\ncli = "b.cli:register"', "[inputs]\n")
    # a header with spaces and a comment
    (root / "c").mkdir()
    (root / "c" / "lab.toml").write_text('# c\n[ lab ]   # the lab\nname = "c"\ncli = "c.cli:register"\n')
    _lab(root, "d", "")  # no group
    monkeypatch.setenv("VMLAB_LABS", str(root))
    warnings: list[str] = []
    assert cli_registrars(warnings.append) == [
        ("a", "a.cli:register"),
        ("b", "b.cli:register"),
        ("c", "c.cli:register"),
    ]
    assert warnings == []


def test_a_broken_lab_table_is_named_with_the_files_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "labs"
    # line 5 of the file (line 4 of the cut from [lab]): the file's own line is the one named
    toml = _lab(root, "x", 'title = "x"\ncli = \n')
    (root / "x" / "lab.toml").write_text("# one\n" + toml.read_text())
    monkeypatch.setenv("VMLAB_LABS", str(root))
    warnings: list[str] = []
    assert cli_registrars(warnings.append) == []
    assert len(warnings) == 1 and f"{toml} is not valid TOML" in warnings[0] and "line 5" in warnings[0]
