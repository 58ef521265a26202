"""`memaudit remediate` end to end on tiny models: search, reuse of the mask, workers, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import optuna
import pytest

from memaudit.cli import run
from memaudit.errors import MemauditError
from memaudit.policy import load_policy
from memaudit.remediate import study as remediate_study
from tests.remediate.conftest import POLICY, remediate_argv
from tests.remediate.postgres import postgres_server, server_binaries
from tests.scan.recording_progress import RecordingProgress


def test_search_retrain_rescan_and_records(job, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["keygen", "--out", str(tmp_path / "keys")]) == 0
    assert run(remediate_argv(job, out, "--sign-key", tmp_path / "keys" / "memaudit-signing.key")) == 0
    record = json.loads((out / "remediation.json").read_text())
    assert len([t for t in record["trials"] if t["state"] == "complete"]) >= 4
    assert record["space"] in ("svdiff", "difffit") and len(record["mask"]) == 7
    chosen = next(t for t in record["trials"] if t["number"] == record["chosen_trial"])
    assert chosen["pareto"] and chosen["mask"] == record["mask"]
    study = optuna.load_study(study_name="memaudit-remediation-test", storage=f"sqlite:///{out / 'study.db'}")
    assert {t.number for t in study.best_trials} == {t["number"] for t in record["trials"] if t["pareto"]}
    assert all(t.user_attrs["mask"] and "fid" in t.user_attrs for t in study.trials)
    for folder in ("before", "after"):
        assert json.loads((out / folder / "result.json").read_text())["verdict"] == "pass"
        assert json.loads((out / folder / "run.json").read_text())["seconds"] > 0
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["predicate"]["buildDefinition"]["resolvedDependencies"][-1]["name"] == "training-data"
    assert "chosen:" in capsys.readouterr().out
    html = (out / "remediation.html").read_text()
    assert "Before: PASS" in html and "After: PASS" in html and "data:image/png;base64," in html
    assert (out / "remediation.pdf").read_bytes().startswith(b"%PDF")
    public, model = tmp_path / "keys" / "memaudit-signing.pub", out / "remediated" / "model"
    for attestation in (out / "attestation.dsse.json", out / "after" / "attestation.dsse.json"):
        assert run(["verify", str(attestation), "--key", str(public), "--model", str(model)]) == 0
    (out / "mask.json").write_text((out / "mask.json").read_text() + " ")
    assert run(["verify", str(out / "attestation.dsse.json"), "--key", str(public)]) == 1


SAVED_MASK = {
    "space": "difffit",
    "blocks": [
        "down_blocks.0.attentions.0.transformer_blocks.0",
        "down_blocks.1.attentions.0.transformer_blocks.0",
        "mid_block.attentions.0.transformer_blocks.0",
        "up_blocks.1.attentions.0.transformer_blocks.0",
        "up_blocks.1.attentions.1.transformer_blocks.0",
        "up_blocks.2.attentions.0.transformer_blocks.0",
        "up_blocks.2.attentions.1.transformer_blocks.0",
    ],
    "bits": [1, 0, 0, 0, 0, 0, 1],
}


def test_a_saved_mask_skips_the_search(job, tmp_path):
    mask = tmp_path / "mask.json"
    mask.write_text(json.dumps(SAVED_MASK))
    out = tmp_path / "out"
    assert run(remediate_argv(job, out, "--mask", mask)) == 0
    record = json.loads((out / "remediation.json").read_text())
    assert record["trials"] == [] and record["mask"] == "1000001" and record["space"] == "difffit"
    assert not (out / "study.db").exists()
    assert json.loads((out / "remediated" / "method.json").read_text())["trainable_parameters"] == 25 * 32 * 2


def test_worker_errors_name_the_problem(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert run(["worker", "--storage", url, "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    assert run(["worker", "--storage", "nosuchdb://x", "--study", "nope"]) == 2
    assert "cannot open the study storage" in capsys.readouterr().err


def test_worker_refuses_a_study_memaudit_did_not_make(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'foreign.db'}"
    optuna.create_study(study_name="foreign", storage=url)
    assert run(["worker", "--storage", url, "--study", "foreign", "--wait", "1"]) == 2
    assert "study 'foreign' was not made by memaudit remediate" in capsys.readouterr().err


def test_worker_waits_for_the_job_record(tmp_path, monkeypatch):
    """remediate creates the study, then records its job: a worker arriving in between must wait, not fail."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    study = optuna.create_study(study_name="race", storage=url)
    seen = []

    def stop_at_context(job, progress=None):
        seen.append(job)
        raise MemauditError("stopped once the job was found")

    monkeypatch.setattr(remediate_study, "trial_context", stop_at_context)
    timer = threading.Timer(1.5, study.set_user_attr, args=(remediate_study.JOB_ATTRIBUTE, {"request": "later"}))
    timer.start()
    try:
        with pytest.raises(MemauditError, match="stopped once the job was found"):
            remediate_study.join_study(url, "race", wait=30)
    finally:
        timer.cancel()
    assert seen == [{"request": "later"}]


def _cli(*argv):
    return [sys.executable, "-m", "memaudit", *map(str, argv)]


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'shared.db').resolve()}"
        return
    if server_binaries() is None:
        pytest.skip(reason="PostgreSQL server binaries are installed by .ci/run")
    with postgres_server() as url:
        yield url


@pytest.mark.slow
def test_two_processes_share_one_study(job, tmp_path, storage_url):
    out = tmp_path / "out"
    url = storage_url
    main = subprocess.Popen(
        _cli(*remediate_argv(job, out, "--storage", url, "--study", "shared", "--trials", "6")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    helper = subprocess.Popen(
        _cli("worker", "--storage", url, "--study", "shared", "--wait", "300"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, main_err = main.communicate(timeout=600)
    _, helper_err = helper.communicate(timeout=600)
    assert main.returncode == 0, main_err
    assert helper.returncode == 0, helper_err
    study = optuna.load_study(study_name="shared", storage=url)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len(study.trials) >= 6
    record = json.loads((out / "remediation.json").read_text())
    assert {t.number for t in study.best_trials} == {t["number"] for t in record["trials"] if t["pareto"]}


def _states(database):
    with sqlite3.connect(database) as connection:
        return connection.execute("select number, state from trials order by number").fetchall()


def _beating(database) -> set[int]:
    """Trials with a recorded heartbeat: optuna can only find a dead worker's trial stale once it has beaten."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "select t.number from trials t join trial_heartbeats h on h.trial_id = t.trial_id"
        ).fetchall()
    return {number for (number,) in rows}


@pytest.mark.slow
def test_kill_9_mid_trial_then_rerun_keeps_completed_trials(job, tmp_path):
    out = tmp_path / "out"
    database = out / "study.db"
    argv = _cli(*remediate_argv(job, out, "--trials", "5", "--heartbeat", "1"))
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    completed_before: list = []
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if database.exists():
            try:
                states, beating = _states(database), _beating(database)
            except sqlite3.OperationalError:
                continue
            running = states[-1][0] if states and states[-1][1] == "RUNNING" else None
            if any(state == "COMPLETE" for _, state in states) and running in beating:
                completed_before = [number for number, state in states if state == "COMPLETE"]
                os.killpg(process.pid, signal.SIGKILL)
                break
    process.wait(timeout=60)
    assert completed_before, "never caught a trial running"
    time.sleep(3)  # past the heartbeat grace period
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    states = dict(_states(database))
    assert all(states[number] == "COMPLETE" for number in completed_before)
    assert "FAIL" in states.values()  # the killed trial, retried as a new one
    assert list(states.values()).count("COMPLETE") >= 5


def _before_scan(job):
    from memaudit.scan import ScanRequest, timed_scan

    root, model, train, holdout = job
    return timed_scan(
        ScanRequest(
            train=train, holdout=holdout, policy=root / "policy.yaml", model=model, feature_cache=root / "cache"
        )
    )


def _request(job, policy, out, **extra):
    from memaudit.remediate.request import RemediateRequest

    root, model, train, holdout = job
    return RemediateRequest(
        model=model,
        base=model,
        train=train,
        holdout=holdout,
        policy=policy,
        out=out,
        feature_cache=root / "cache",
        search_anyway=True,
        **extra,
    )


def test_a_reused_before_scan_must_match_the_policy_and_data(job, tmp_path):
    from memaudit.remediate.run import remediate

    other = tmp_path / "other.yaml"
    other.write_text(POLICY.replace("name: remediation-test", "name: another-policy"))
    with pytest.raises(MemauditError, match="used another policy or training set"):
        remediate(_request(job, other, tmp_path / "out"), before=_before_scan(job))
    assert not (tmp_path / "out" / "before").exists()


def test_a_reused_before_scan_keeps_the_record_of_when_it_ran(job, tmp_path):
    from memaudit.remediate.run import remediate

    scan, run_record = _before_scan(job)
    mask = tmp_path / "mask.json"
    mask.write_text(json.dumps(SAVED_MASK))
    progress = RecordingProgress()
    result = remediate(
        _request(job, job[0] / "policy.yaml", tmp_path / "out", mask=mask), progress, before=(scan, run_record)
    )
    assert result.before is scan
    steps = load_policy(job[0] / "policy.yaml").policy.remediation.retrain_steps
    assert progress.stages["retraining the chosen mask (steps)"] == [steps, steps]
    written = json.loads((tmp_path / "out" / "before" / "run.json").read_text())
    assert written == json.loads(run_record.model_dump_json()) and written["seconds"] > 0


def test_retraining_progress_counts_steps_from_where_a_resumed_run_starts():
    from memaudit.remediate.run import _step_progress

    progress = RecordingProgress()
    on_step = _step_progress(progress.stage("retrain", 10))
    for step in (7, 8, 9, 10):  # resumed from a checkpoint at step 6
        on_step(step, 0.1)
    assert progress.stages["retrain"] == [10, 10]
