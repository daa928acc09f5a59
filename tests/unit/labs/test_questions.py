"""Questions in lab.toml, the answers file, its template, sealed predictions and the CLI around them.

The lab `quiz` lives in a temporary VMLAB_LABS folder: its steps report fixed figures (fast = 2 ms,
slow = 10 ms), so every expected grade follows from the numbers written here. Every shipped lab is
also loaded, its template parsed and its answer key checked; the warm-up lab runs for real once.
"""

from __future__ import annotations

import json
import statistics
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vmlab.cli.main import app
from vmlab.errors import LabError, UsageError
from vmlab.labs.catalog import lab_names, lab_path, load_lab
from vmlab.report.io import load_report
from vmlab.spec.answers import answers_template, parse_answers
from vmlab.spec.lab import parse_lab
from vmlab.spec.questions import ANSWERS_INPUT, ChoiceQuestion, NumberQuestion, TextQuestion

runner = CliRunner()

STEPS = '''
"""Steps of the temporary quiz lab: fixed figures."""
from __future__ import annotations

from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment
from vmlab.report.stats import summarize


class FixedParams(StepParams):
    value: float = 1.0


def fixed(params: FixedParams, ctx: StepContext) -> dict:
    samples = [params.value] * 3
    return {ctx.step_id: Experiment(unit="ms", samples=samples, summary=summarize(samples))}
'''

LAB = """
[lab]
name = "quiz"
title = "A lab that asks questions"

[inputs.answers]
kind = "file"
suffixes = [".toml"]

[[tasks]]
id = "t1"
title = "measure"
experiments = ["fast", "slow"]

[[tasks]]
id = "t2"
title = "think"

[experiments.fast]
runner = "quiz_steps:fixed"
params = { value = 2.0 }

[experiments.slow]
runner = "quiz_steps:fixed"
params = { value = 10.0 }

[[checks]]
id = "fast-ran"
task = "t1"
kind = "present"
path = "fast"

[[questions]]
id = "slow-ms"
task = "t1"
kind = "number"
prompt = "What is the median of slow, in ms?"
unit = "ms"
path = "slow"
abs_tol = 1.0

[[questions]]
id = "ratio"
task = "t1"
kind = "number"
prompt = "How many times slower is slow than fast?"
unit = "x"
expr = "slow / fast"
rel_tol = 0.1
published = 4
source = "Someone et al. (2020)"

[[questions]]
id = "pick"
task = "t2"
kind = "choice"
prompt = "Which one?"
choices = ["a", "b", "c"]
points = 2

[[questions]]
id = "why"
task = "t2"
kind = "text"
prompt = "Why?"
min_words = 5
points = 3
"""

KEY = '[pick]\nanswer = "b"\n'
QUESTION_IDS = ["slow-ms", "ratio", "pick", "why"]


@pytest.fixture
def quiz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vmlab_home: Path) -> Path:
    labs = tmp_path / "labs"
    (labs / "quiz" / "solution").mkdir(parents=True)
    (labs / "quiz" / "lab.toml").write_text(LAB)
    (labs / "quiz" / "solution" / "answers.toml").write_text(KEY)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "quiz_steps.py").write_text(STEPS)
    monkeypatch.setenv("VMLAB_LABS", str(labs))
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def answers(**given: Any) -> str:
    """An answers file: one table per keyword (dashes for underscores), values as TOML."""
    out = []
    for k, v in given.items():
        out.append(f"[{k.replace('_', '-')}]\nanswer = {json.dumps(v)}\n")
    return "\n".join(out)


# ---- lab.toml: questions are validated at load, naming the key ------------------------------------


def write_lab(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "lab.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        (
            'unit = "ms"\npath = "slow"',
            'unit = "ms"\npath = "slow"\nchoices = ["x"]',
            "questions[0 id='slow-ms'].choices",
            "Extra inputs",
        ),
        ('path = "slow"\nabs_tol', "abs_tol", "questions[0 id='slow-ms']", "exactly one of path and expr"),
        ("abs_tol = 1.0", "", "questions[0 id='slow-ms']", "rel_tol, abs_tol or both"),
        ('kind = "number"', 'kind = "numeric"', "questions[0 id='slow-ms']", "does not match"),
        ('task = "t1"\nkind = "number"', 'task = "t9"\nkind = "number"', "<top>", "names task 't9'"),
        ('path = "slow"', 'path = "slow..x"', "questions[0 id='slow-ms'].path", "empty segment"),
        ('unit = "ms"\n', "", "questions[0 id='slow-ms'].unit", "Field required"),
        ('id = "slow-ms"', 'id = "slow ms"', "questions[0 id='slow ms'].id", "should match pattern"),
    ],
)
def test_a_malformed_question_names_its_key(
    tmp_path: Path, old: str, new: str, key: str, problem: str
) -> None:
    text = LAB
    assert old in text
    with pytest.raises(LabError) as e:
        parse_lab(write_lab(tmp_path, text.replace(old, new, 1)))
    assert f"key {key}:" in e.value.message and problem in e.value.message, e.value.message


def test_published_needs_a_source_and_choices_are_distinct(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"questions\[1 id='ratio'\]: .*needs its `source`"):
        parse_lab(write_lab(tmp_path, LAB.replace('source = "Someone et al. (2020)"\n', "")))
    with pytest.raises(LabError, match=r"questions\[2 id='pick'\]: .*lists a choice twice"):
        parse_lab(write_lab(tmp_path, LAB.replace('["a", "b", "c"]', '["a", "b", "a"]')))
    with pytest.raises(LabError, match=r"questions\[3 id='why'\].min_words: .*greater than or equal to 1"):
        parse_lab(write_lab(tmp_path, LAB.replace("min_words = 5", "min_words = 0")))


def test_questions_need_the_answers_input_and_distinct_ids(tmp_path: Path) -> None:
    no_input = LAB.replace('[inputs.answers]\nkind = "file"\nsuffixes = [".toml"]\n', "")
    with pytest.raises(LabError, match=r"declares \[inputs.answers\] with kind = \"file\""):
        parse_lab(write_lab(tmp_path, no_input))
    twice = LAB.replace('id = "why"', 'id = "pick"')
    with pytest.raises(LabError, match="question id 'pick' appears twice"):
        parse_lab(write_lab(tmp_path, twice))


def test_the_quiz_lab_loads_with_its_questions(tmp_path: Path) -> None:
    lab = parse_lab(write_lab(tmp_path, LAB))
    assert [q.id for q in lab.questions] == QUESTION_IDS
    slow, ratio, pick, why = lab.questions
    assert isinstance(slow, NumberQuestion) and (slow.path, slow.abs_tol, slow.rel_tol) == ("slow", 1.0, None)
    assert isinstance(ratio, NumberQuestion) and ratio.path_texts() == ["slow", "fast"]
    assert isinstance(pick, ChoiceQuestion) and pick.points == 2 and not pick.required
    assert isinstance(why, TextQuestion) and why.min_words == 5
    assert lab.inputs[ANSWERS_INPUT].kind == "file"


# ---- the answers file -----------------------------------------------------------------------------


def fill(template: str, qid: str, value: str) -> str:
    """The template with the `answer` line of table [qid] set to `value` (TOML), as a student edits it."""
    head, table, rest = template.partition(f"[{qid}]\n")
    i = rest.index("answer = ")
    j = rest.index('"""\n', i + 13) + 4 if rest.startswith('answer = """', i) else rest.index("\n", i) + 1
    return head + table + rest[:i] + f"answer = {value}\n" + rest[j:]


def test_template_round_trip(tmp_path: Path) -> None:
    lab = parse_lab(write_lab(tmp_path, LAB))
    text = answers_template(lab)
    assert list(tomllib.loads(text)) == QUESTION_IDS  # one table per question, in order
    assert parse_answers(text, lab, "answers.toml") == {}  # as written: nothing answered
    for prompt in ("What is the median of slow, in ms?", "Which one?", "Why?"):
        assert f"# {prompt}" in text
    assert '"a"' in text and '"b"' in text and '"c"' in text  # the choices, as TOML strings
    filled = fill(
        fill(fill(text, "slow-ms", "9.5"), "pick", '"c"'), "why", '"""\n  one two three four five six\n"""'
    )
    got = parse_answers(filled, lab, "answers.toml")
    assert got == {"slow-ms": 9.5, "pick": "c", "why": "one two three four five six"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[slow-ms\nanswer = 1", "answers.toml is not valid TOML"),
        (
            "[slow-mss]\nanswer = 1\n",
            "[slow-mss] is not a question of lab quiz (questions: slow-ms, ratio, pick, why)",
        ),
        ('[slow-ms]\nanswer = "ten"\n', "[slow-ms] answer must be a number, not 'ten'"),
        ("[slow-ms]\nanswer = true\n", "[slow-ms] answer must be a number, not True"),
        ("[slow-ms]\nanswer = nan\n", "[slow-ms] answer must be a finite number"),
        ('[pick]\nanswer = "d"\n', '[pick] answer \'d\' is not one of the choices: "a", "b", "c"'),
        ("[why]\nanswer = 3\n", "[why] answer must be a string, not 3"),
        ('[why]\nanswer = "x"\nnote = "y"\n', "[why] has key 'note': only `answer` is allowed"),
        ('pick = "b"\n', "pick must be a table"),
    ],
)
def test_a_malformed_answers_file_is_one_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    lab = parse_lab(write_lab(tmp_path, LAB))
    with pytest.raises(UsageError) as e:
        parse_answers(text, lab, "answers.toml")
    assert problem in e.value.one_line(), e.value.one_line()


# ---- CLI: lab answers, lab show, lab predict -------------------------------------------------------


def test_lab_answers_prints_writes_and_never_overwrites(quiz: Path) -> None:
    printed = runner.invoke(app, ["lab", "answers", "quiz"])
    assert printed.exit_code == 0 and list(tomllib.loads(printed.stdout)) == QUESTION_IDS
    written = runner.invoke(app, ["lab", "answers", "quiz", "-o", "answers.toml", "--json"])
    assert written.exit_code == 0, written.output
    data = json.loads(written.stdout)
    assert data["lab"] == "quiz" and [q["id"] for q in data["questions"]] == QUESTION_IDS
    assert [q["kind"] for q in data["questions"]] == ["number", "number", "choice", "text"]
    assert (quiz / "answers.toml").read_text() == data["template"] == printed.stdout
    (quiz / "answers.toml").write_text(answers(pick="b"))
    again = runner.invoke(app, ["lab", "answers", "quiz", "-o", "answers.toml"])
    assert again.exit_code == 2 and "exists; it is not overwritten" in again.stderr
    assert (quiz / "answers.toml").read_text() == answers(pick="b")
    forced = runner.invoke(app, ["lab", "answers", "quiz", "-o", "answers.toml", "--force"])
    assert forced.exit_code == 0 and (quiz / "answers.toml").read_text() == printed.stdout


def test_lab_answers_of_a_lab_without_questions_is_refused(quiz: Path) -> None:
    text = LAB.split("[[questions]]")[0]
    (quiz / "labs" / "quiz" / "lab.toml").write_text(text)
    result = runner.invoke(app, ["lab", "answers", "quiz"])
    assert result.exit_code == 2 and "asks no questions" in result.stderr


def test_lab_show_lists_each_tasks_questions_never_the_key(quiz: Path) -> None:
    shown = runner.invoke(app, ["lab", "show", "quiz", "--json"])
    assert shown.exit_code == 0
    qs = json.loads(shown.stdout)["questions"]
    assert [(q["id"], q["task"], q["kind"]) for q in qs] == [
        ("slow-ms", "t1", "number"),
        ("ratio", "t1", "number"),
        ("pick", "t2", "choice"),
        ("why", "t2", "text"),
    ]
    assert qs[0]["unit"] == "ms" and qs[2]["choices"] == ["a", "b", "c"]
    assert all("answer" not in q for q in qs)
    text = runner.invoke(app, ["lab", "show", "quiz"])
    assert text.exit_code == 0
    for needle in ("questions of quiz", "slow-ms", "What is the median of slow", "number [ms]", '"b"'):
        assert needle in text.stdout, needle


def test_lab_predict_seals_the_numbers_with_sha256_and_time(quiz: Path) -> None:
    import datetime as dt
    import hashlib

    body = answers(slow_ms=9.5, ratio=5, pick="a")
    (quiz / "answers.toml").write_text(body)
    before = dt.datetime.now(dt.UTC)
    result = runner.invoke(app, ["lab", "predict", "quiz", "--input", "answers=answers.toml", "--json"])
    assert result.exit_code == 0, result.output
    sealed = json.loads(result.stdout)
    assert sealed["lab"] == "quiz" and sealed["values"] == {"slow-ms": 9.5, "ratio": 5.0}
    assert sealed["sha256"] == hashlib.sha256(body.encode()).hexdigest()
    at = dt.datetime.fromisoformat(sealed["sealed_at"].replace("Z", "+00:00"))
    assert before <= at <= dt.datetime.now(dt.UTC) and at.utcoffset() == dt.timedelta(0)
    out = runner.invoke(app, ["lab", "predict", "quiz", "--input", "answers=answers.toml", "-o", "s.json"])
    assert out.exit_code == 0 and json.loads((quiz / "s.json").read_text())["values"] == sealed["values"]
    nothing = quiz / "none.toml"
    nothing.write_text(answers(pick="a"))
    empty = runner.invoke(app, ["lab", "predict", "quiz", "--input", "answers=none.toml"])
    assert empty.exit_code == 2 and "no number question is answered" in empty.stderr
    wrong = runner.invoke(app, ["lab", "predict", "quiz", "--input", "tool=answers.toml"])
    assert wrong.exit_code == 2 and "seals one input, answers" in wrong.stderr


# ---- lab run: the answers input and the sealed predictions ----------------------------------------


def test_a_malformed_answers_input_stops_the_run_before_anything_is_made(
    quiz: Path, vmlab_home: Path
) -> None:
    (quiz / "answers.toml").write_text('[slow-ms]\nanswer = "ten"\n')
    result = runner.invoke(app, ["lab", "run", "quiz", "--input", "answers=answers.toml", "-o", "out/r.json"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "[slow-ms] answer must be a number, not 'ten'" in lines[0], result.stderr
    assert not (quiz / "out").exists()
    assert not (vmlab_home / "runs").exists() or not any((vmlab_home / "runs").iterdir())


def test_predictions_need_answers(quiz: Path) -> None:
    (quiz / "s.json").write_text("{}")
    result = runner.invoke(app, ["lab", "run", "quiz", "--predictions", "s.json", "-o", "out/r.json"])
    assert result.exit_code == 2 and "--predictions needs the answers" in result.stderr
    (quiz / "a.toml").write_text(answers(ratio=5))
    bad = runner.invoke(
        app, ["lab", "run", "quiz", "--input", "answers=a.toml", "--predictions", "s.json", "-o", "o/r.json"]
    )
    assert bad.exit_code == 2 and "not a sealed predictions file" in bad.stderr


def check(report: Path) -> tuple[int, dict[str, dict[str, Any]], dict[str, Any]]:
    result = runner.invoke(app, ["check", str(report), "--json"])
    out = json.loads(result.stdout)
    return result.exit_code, {c["id"]: c for c in out["checks"]}, out["grade"]


def test_answers_and_sealed_predictions_are_recorded_and_graded(quiz: Path) -> None:
    import hashlib

    body = answers(slow_ms=10.8, ratio=5.6, pick="b", why="because the slow step sleeps longer")
    (quiz / "answers.toml").write_text(body)
    seal = runner.invoke(app, ["lab", "predict", "quiz", "--input", "answers=answers.toml", "-o", "s.json"])
    assert seal.exit_code == 0, seal.output
    run = runner.invoke(
        app,
        [
            "lab",
            "run",
            "quiz",
            "--input",
            "answers=answers.toml",
            "--predictions",
            "s.json",
            "-o",
            "h/r.json",
        ],
    )
    assert run.exit_code == 0, run.output
    report = load_report(quiz / "h" / "r.json")
    sha = hashlib.sha256(body.encode()).hexdigest()
    assert report.inputs[ANSWERS_INPUT].sha256 == sha and report.predictions is not None
    assert report.predictions.sha256 == sha
    assert report.predictions.answers == {
        "slow-ms": 10.8,
        "ratio": 5.6,
        "pick": "b",
        "why": "because the slow step sleeps longer",
    }
    assert report.predictions.sealed is not None and report.predictions.sealed.values == {
        "slow-ms": 10.8,
        "ratio": 5.6,
    }
    code, checks, grade = check(quiz / "h" / "r.json")
    # slow = 10 ms: 10.8 is within abs 1; slow / fast = 5: 5.6 is 12 % off, outside rel 0.1
    assert checks["q:slow-ms"]["outcome"] == "pass" and checks["q:slow-ms"]["measured"] == 10.0
    assert checks["q:ratio"]["outcome"] == "fail" and checks["q:ratio"]["measured"] == 5.0
    assert "predicted 5.6x, measured 5x" in checks["q:ratio"]["message"]
    assert "published 4x (Someone et al. (2020))" in checks["q:ratio"]["message"]
    assert checks["q:pick"]["outcome"] == "pass" and checks["q:pick"]["score"] == 2
    # six words, five wanted: handed in, 0 of 3 points until a tutor grades it
    why = checks["q:why"]
    assert (why["kind"], why["outcome"], why["score"], why["points"]) == ("question-text", "pass", 0, 3)
    assert checks["answers"]["outcome"] == "pass"
    assert code == 0  # questions are optional: a wrong prediction costs points, not the exit code
    assert (grade["score"], grade["max_score"]) == (1 + 1 + 2, 1 + 7)  # fast-ran + slow-ms + pick


def test_a_prediction_changed_after_sealing_is_flagged(quiz: Path) -> None:
    (quiz / "answers.toml").write_text(answers(slow_ms=3, ratio=5, pick="b"))
    seal = runner.invoke(app, ["lab", "predict", "quiz", "--input", "answers=answers.toml", "-o", "s.json"])
    assert seal.exit_code == 0
    (quiz / "answers.toml").write_text(answers(slow_ms=10, ratio=5, pick="b"))  # after seeing slow = 10
    run = runner.invoke(
        app,
        [
            "lab",
            "run",
            "quiz",
            "--input",
            "answers=answers.toml",
            "--predictions",
            "s.json",
            "-o",
            "h/r.json",
        ],
    )
    assert run.exit_code == 0 and "the sealed predictions differ from the answers" in run.stderr
    code, checks, grade = check(quiz / "h" / "r.json")
    assert checks["answers"]["outcome"] == "fail" and code == 1
    assert "slow-ms: sealed 3, answered 10" in checks["answers"]["message"]
    # the number questions score 0; the choice, not a prediction, still counts
    assert checks["q:slow-ms"]["score"] == 0 and checks["q:ratio"]["score"] == 0
    assert checks["q:pick"]["score"] == 2 and grade["score"] == 1 + 2


# ---- every shipped lab ----------------------------------------------------------------------------

SHIPPED = ["hll-vm", "isa-emulation", "kvm-api", "process-vm", "system-vm", "warmup"]


def test_the_shipped_labs_are_the_ones_tested() -> None:
    assert set(SHIPPED) <= set(lab_names())


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_lab_asks_questions_whose_template_parses_and_key_fits(name: str) -> None:
    lab = load_lab(name)
    assert lab.questions, f"{name} asks no question"
    assert lab.inputs[ANSWERS_INPUT].kind == "file"
    text = answers_template(lab)
    assert list(tomllib.loads(text)) == [q.id for t in lab.tasks for q in lab.questions if q.task == t.id]
    assert parse_answers(text, lab, "template") == {}
    key_file = lab_path(name).parent / "solution" / "answers.toml"
    key = tomllib.loads(key_file.read_text())
    choices = {q.id: q.choices for q in lab.questions if isinstance(q, ChoiceQuestion)}
    assert set(key) == set(choices), "the key holds exactly the choice questions"
    for qid, table in key.items():
        assert table["answer"] in choices[qid], qid
    # the key is never in lab.toml
    assert not any("answer" in q.model_dump() for q in lab.questions)


def test_the_question_counts_per_lab() -> None:
    counts = {name: len(load_lab(name).questions) for name in SHIPPED}
    assert counts == {
        "hll-vm": 18,
        "isa-emulation": 11,
        "kvm-api": 20,  # baseline, smp and paging ask 3 + 4 + 3 more (issue 22)
        "process-vm": 15,
        "system-vm": 32,  # issue 21: devices and vcpus ask 4 + 4, ksm, balloon and density 4 + 3 + 3
        "warmup": 5,
    }


def test_kvm_api_task_own_asks_nothing() -> None:
    """`vmlab grade --task own` grades the student's own guest by its checks and the re-run alone."""
    assert not [q for q in load_lab("kvm-api").questions if q.task == "own"]


# ---- the warm-up lab, for real --------------------------------------------------------------------


def test_warmup_run_grades_the_prediction_against_its_own_measurement(
    tmp_path: Path, vmlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    predicted_ratio, predicted_ms = 12.0, 1.5
    body = answers(
        true_median_ms=predicted_ms,
        first_run_slowest="compiling /bin/true",
        python_vs_true=predicted_ratio,
        uname_in_container="Linux: a container's processes run on the host's kernel",
    )
    (tmp_path / "answers.toml").write_text(body)
    seal = runner.invoke(app, ["lab", "predict", "warmup", "--input", "answers=answers.toml", "-o", "s.json"])
    assert seal.exit_code == 0, seal.output
    run = runner.invoke(
        app,
        [
            "lab",
            "run",
            "warmup",
            "--input",
            "answers=answers.toml",
            "--predictions",
            "s.json",
            "-o",
            "h/r.json",
        ],
    )
    assert run.exit_code == 0, run.output
    data = json.loads((tmp_path / "h" / "r.json").read_text())
    true_median = statistics.median(data["experiments"]["true"]["samples"])
    python_median = statistics.median(data["experiments"]["python"]["samples"])
    measured_ratio = python_median / true_median
    measured_ms = true_median * 1000
    _, checks, grade = check(tmp_path / "h" / "r.json")
    ratio = checks["q:python-vs-true"]
    assert ratio["measured"] == pytest.approx(measured_ratio, rel=1e-5)
    assert ratio["outcome"] == (
        "pass" if abs(predicted_ratio - measured_ratio) <= 0.5 * measured_ratio else "fail"
    )
    assert ratio["message"].startswith(f"predicted {predicted_ratio:g}x, measured ")
    ms = checks["q:true-median-ms"]
    assert ms["measured"] == pytest.approx(measured_ms, rel=1e-5)
    assert ms["outcome"] == ("pass" if abs(predicted_ms - measured_ms) <= 0.5 * measured_ms else "fail")
    assert checks["q:first-run-slowest"]["outcome"] == "fail"  # the key says the page cache
    assert checks["q:uname-in-container"]["outcome"] == "pass"
    assert checks["q:interpreter-start-up"]["outcome"] == "fail"  # not answered
    assert "not answered" in checks["q:interpreter-start-up"]["message"]
    assert checks["answers"]["outcome"] == "pass"
    check_points, question_points = 6, 1 + 1 + 1 + 2 + 1
    assert grade["max_score"] == check_points + question_points


def test_a_verdict_written_back_at_run_time_is_reproduced_by_the_class_grader(quiz: Path) -> None:
    """`vmlab grade` re-grades a report's own `checks` without its folder (verdict_flags): the
    questions must come out the same, or every hand-in run with --check would look edited."""
    from vmlab.grade.flags import verdict_flags

    (quiz / "answers.toml").write_text(answers(slow_ms=10.8, ratio=5.6, pick="a", why="a b c d e f"))
    run = runner.invoke(
        app, ["lab", "run", "quiz", "--input", "answers=answers.toml", "-o", "h/r.json", "--check", "--json"]
    )
    assert run.exit_code == 0, run.output
    report = load_report(quiz / "h" / "r.json")
    assert report.checks is not None and any(c.id == "q:ratio" for c in report.checks)
    assert verdict_flags(report, load_lab("quiz")) == []
