"""The kvm-api lab's tasks baseline, smp and paging end to end: `vmlab lab run` with a student's variant,
then `vmlab check`, on the real /dev/kvm with the real gcc.

The figures asserted are the student's variant values (drawn by `vmlab lab variant`, an independent
path from the run) put into the hand counts of lab.toml's comments: baseline n + 1 exits in both
VMMs; doorbell n + 1 IO and n HLT per vCPU; ipi n kernel halts per vCPU; paging one exit each.
"""

import json
import shutil
from pathlib import Path

import pytest
from tests.helpers import failed_verdicts
from typer.testing import CliRunner

from vmlab.cli.main import app

pytestmark = pytest.mark.kvm
runner = CliRunner()


def test_new_tasks_run_and_grade(kvm_device: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("gcc") is None:
        from tests.conftest import unavailable

        unavailable("gcc", "is not installed (scripts/setup-host.sh installs it)")
    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "home"))
    v = runner.invoke(app, ["lab", "variant", "kvm-api", "--student", "s1", "--json"])
    assert v.exit_code == 0, v.output
    raw = json.loads(v.stdout)
    values = raw.get("values", raw)
    base_n, smp_n, page_n = int(values["base_n"]), int(values["smp_n"]), int(values["page_n"])
    report = tmp_path / "hand-in" / "report.json"
    args = ["lab", "run", "kvm-api", "--student", "s1", "-o", str(report)]
    for task in ("baseline", "smp", "paging"):
        args += ["--task", task]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    exps = json.loads(report.read_text())["experiments"]
    base = exps["c-baseline"]
    for vmm in ("c", "python"):
        assert base[vmm]["counts"]["IO"] == base_n and base[vmm]["counts"]["HLT"] == 1
    assert len(base["vmm-cost"]["samples"]) == len(base["c"]["samples"])
    smp = exps["smp"]
    for i in (0, 1):
        assert smp["spin"]["counts"][f"vcpu{i}_IO"] == 1
        assert smp["doorbell"]["counts"][f"vcpu{i}_IO"] == smp_n + 1
        assert smp["doorbell"]["counts"][f"vcpu{i}_HLT"] == smp_n
        assert smp["ipi"]["counts"][f"vcpu{i}_user_exits"] == 1
        assert smp["ipi"]["counts"][f"vcpu{i}_kvm_halt_exits"] == smp_n
    paging = exps["paging"]
    assert paging["pages"]["values"]["n"] == page_n
    assert {
        k: paging[k]["counts"]["user_exits"] for k in ("pages", "cr3", "invlpg", "ptwrite")
    } == dict.fromkeys(("pages", "cr3", "invlpg", "ptwrite"), 1)
    assert (tmp_path / "hand-in" / "artifacts" / "c-baseline" / "cvmm.c").is_file()
    c = runner.invoke(app, ["check", str(report), "--json"])
    verdict = json.loads(c.stdout)
    checks = [x for x in verdict["checks"] if x.get("task") in ("baseline", "smp", "paging")]
    assert {x["id"] for x in checks} >= {
        "c-io",
        "same-exits",
        "doorbell-hlt",
        "ipi-halts",
        "ptwrite-remapped",
    }
    assert failed_verdicts(checks) == [], c.output
