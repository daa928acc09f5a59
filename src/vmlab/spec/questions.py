"""A lab's `[[questions]]`, as lab.toml declares them: a strict union keyed by `kind`, validated at
load (the answers file is vmlab.spec.answers', their grading vmlab.check.questions')."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from vmlab.spec.checks import PathText
from vmlab.spec.expr import compile_expr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


ANSWERS_INPUT = "answers"  # the input every lab with questions declares: the student's answers file


def _number_expr(text: str) -> str:
    if compile_expr(text).is_condition:
        raise ValueError(f"{text!r} is a condition; a question predicts a number, e.g. median(a) / median(b)")
    return text


class _QuestionBase(_Strict):
    """A question of the task sheet, answered in the answers input (`vmlab lab answers` writes the
    template) and graded by vmlab.check.questions as the check result `q:<id>`.

    Points count in the points possible whether or not the student answers (fail closed). `required`
    (default false) makes a question's failure fail `vmlab check`'s exit code like a required check.
    """

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")  # a TOML bare key: the table's name
    task: str
    prompt: str = Field(min_length=1)
    points: float = Field(1.0, ge=0)
    required: bool = False


class NumberQuestion(_QuestionBase):
    """A prediction: the answer is compared with the student's own measurement, the figure at `path`
    (or the value of `expr` over paths); it passes when |answer - measured| <= max(rel_tol * |measured|,
    abs_tol). `published` (with its `source`) is a figure from the literature shown beside both.
    `sealed = true`: the answer counts only when `vmlab lab predict` sealed it before the run."""

    kind: Literal["number"]
    unit: str
    path: PathText | None = None
    expr: Annotated[str, AfterValidator(_number_expr)] | None = None
    rel_tol: float | None = Field(None, ge=0)
    abs_tol: float | None = Field(None, ge=0)
    published: float | None = None
    source: str | None = None
    sealed: bool = False

    @model_validator(mode="after")
    def _complete(self) -> NumberQuestion:
        if (self.path is None) == (self.expr is None):
            raise ValueError("a number question needs exactly one of path and expr (the figure it predicts)")
        if self.rel_tol is None and self.abs_tol is None:
            raise ValueError("a number question needs rel_tol, abs_tol or both")
        if self.published is not None and not self.source:
            raise ValueError("`published` needs its `source` (who published the figure, where)")
        if self.source is not None and self.published is None:
            raise ValueError("`source` is given but no `published` figure")
        return self

    def path_texts(self) -> list[str]:
        """The report paths the prediction is compared with (to find the steps behind them)."""
        if self.path is not None:
            return [self.path]
        return [str(p) for p in compile_expr(self.expr or "").paths.values()]


class ChoiceQuestion(_QuestionBase):
    """One of `choices`; the tutors' key lives in labs/<lab>/solution/answers.toml, never here."""

    kind: Literal["choice"]
    choices: list[Annotated[str, Field(min_length=1)]] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct(self) -> ChoiceQuestion:
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("`choices` lists a choice twice")
        return self


class TextQuestion(_QuestionBase):
    """A written answer: present with at least `min_words` words passes, scored by a tutor later."""

    kind: Literal["text"]
    min_words: int = Field(20, ge=1)


Question = Annotated[NumberQuestion | ChoiceQuestion | TextQuestion, Field(discriminator="kind")]
QUESTION_KINDS = ("number", "choice", "text")
