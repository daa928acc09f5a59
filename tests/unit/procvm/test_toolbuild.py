"""The tool-build recipe's pure parts, on real excerpts of the top Makefile.am and configure.ac of
Valgrind 3.19.0 (Debian 12) and 3.24.0 (Debian 13) (tests/unit/procvm/data/)."""

from pathlib import Path

import pytest

from vmlab.errors import UsageError
from vmlab.labs.catalog import lab_dir
from vmlab.procvm.toolbuild import (
    check_tool_dir,
    default_tool_dir,
    register_tool,
    source_version,
    tool_key,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture(params=["3.19.0", "3.24.0"])
def tree(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    v = request.param
    (tmp_path / "Makefile.am").write_text((DATA / f"valgrind-{v}-Makefile.am.head").read_text())
    conf = (DATA / f"valgrind-{v}-configure.ac.head").read_text()
    conf += (DATA / f"valgrind-{v}-configure.ac.part").read_text()
    (tmp_path / "configure.ac").write_text(conf)
    (tmp_path / "VERSION").write_text(v)
    return tmp_path


def test_register_keeps_only_the_needed_tools_and_adds_the_makefiles(tree: Path) -> None:
    register_tool(tree)
    am = (tree / "Makefile.am").read_text()
    assert "TOOLS = none lackey observer\n" in am and "EXP_TOOLS =\n" in am
    assert "memcheck \\" not in am and "$(TOOLS)" in am  # SUBDIRS still expands the list
    conf = (tree / "configure.ac").read_text().splitlines()
    i = conf.index("   observer/Makefile")
    assert conf[i + 1] == "   observer/tests/Makefile" and conf[i + 2] == "   none/Makefile"
    assert "\n".join(conf).count("observer/Makefile") == 1


def test_source_version_reads_the_m4_parts(tree: Path) -> None:
    assert source_version(tree) == (tree / "VERSION").read_text()


def test_not_a_source_tree(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a Valgrind source tree"):
        source_version(tmp_path)


def test_key_follows_the_tool_files(tmp_path: Path) -> None:
    tool = tmp_path / "t"
    (tool / "tests").mkdir(parents=True)
    (tool / "ob_main.c").write_text("int x;\n")
    k1 = tool_key("3.19.0", tool)
    assert tool_key("3.19.0", tool) == k1
    assert tool_key("3.20.0", tool) != k1
    (tool / "ob_main.c").write_text("int y;\n")
    assert tool_key("3.19.0", tool) != k1


@pytest.mark.parametrize("where", ["skeleton/observer", "solution/observer"])
def test_the_skeleton_and_the_solution_are_valid_tool_dirs(where: str) -> None:
    check_tool_dir(lab_dir("process-vm") / where)


def test_the_default_tool_is_the_skeleton_the_lab_toml_names() -> None:
    # what `vmlab procvm tool build` builds without --tool-dir is what `lab run` uses: the hand-out
    assert default_tool_dir(lab_dir("process-vm")) == lab_dir("process-vm") / "skeleton" / "observer"


def test_the_skeleton_has_the_solutions_build_rules_and_output_lines_but_no_instrumentation() -> None:
    skeleton, solution = (
        lab_dir("process-vm") / "skeleton" / "observer",
        lab_dir("process-vm") / "solution" / "observer",
    )
    for rules in ("Makefile.am", "tests/Makefile.am"):
        assert (skeleton / rules).read_text() == (solution / rules).read_text()
    code = (skeleton / "ob_main.c").read_text()
    for line in ("superblocks translated: %llu", "superblocks entered: %llu", "guest instrs: %llu"):
        assert line in code
    assert "TODO" in code and "return sbIn;" in code
    assert "addStmtToIRSB(sbOut" not in code  # the solution's rebuild of the superblock is not there


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({}, "has no Makefile.am"),
        ({"Makefile.am": "noinst_PROGRAMS = foo\n"}, "does not build observer-"),
        ({"Makefile.am": "noinst_PROGRAMS = observer-@VGCONF_ARCH_PRI@-@VGCONF_OS@\n"}, "has no .c file"),
    ],
)
def test_bad_tool_dirs_say_why(tmp_path: Path, files: dict[str, str], fragment: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UsageError, match=fragment) as e:
        check_tool_dir(tmp_path)
    assert "\n" not in e.value.one_line()
