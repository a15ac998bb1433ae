"""exman.slurm.fields on lines ``scontrol show job -o`` printed (Slurm 22.05.8, the test cluster of
.ci/slurm): values with spaces, with ``=``, empty, and a comment that looks like a field.
tests/slurm/test_cluster.py reads a live job's line the same way."""

from __future__ import annotations

from exman.slurm import fields, stop_reason

# sbatch --job-name "my job=x y" --comment "hello world Reason=fake" -o "/tmp/mend2 sl/out %j.txt"
#        "job a.sh" arg1 "arg two"        (run in "/tmp/mend2 sl/dir x")
BATCH = (
    "JobId=2281 JobName=my job=x y UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294900991 Nice=0 "
    "Account=root QOS=normal JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 "
    "Reboot=0 ExitCode=0:0 RunTime=00:00:01 TimeLimit=365-00:00:00 TimeMin=N/A SubmitTime=2026-11-30T10:17:38 "
    "EligibleTime=2026-11-30T10:17:38 AccrueTime=2026-11-30T10:17:38 StartTime=2026-11-30T10:17:39 "
    "EndTime=2027-11-30T10:17:39 Deadline=N/A PreemptEligibleTime=2026-11-30T10:17:39 PreemptTime=None "
    "SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-30T10:17:39 Scheduler=Backfill Partition=debug "
    "AllocNode:Sid=localhost:9805 ReqNodeList=(null) ExcNodeList=(null) NodeList=localhost BatchHost=localhost "
    "NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,node=1,billing=1 Socks/Node=* "
    "NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) "
    "DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) "
    "Command=/tmp/mend2 sl/dir x/job a.sh arg1 arg two WorkDir=/tmp/mend2 sl/dir x "
    "Comment=hello world Reason=fake  StdErr=/tmp/mend2 sl/out 2281.txt StdIn=/dev/null "
    "StdOut=/tmp/mend2 sl/out 2281.txt Power= \n"
)

# scontrol show job -o 2282 of sbatch --array=0-2 -o /dev/null --wrap "sleep 30": one line per task
ARRAY_TASK = (
    "JobId={id} ArrayJobId=2282 ArrayTaskId={task} JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A "
    "Priority=4294900990 Nice=0 Account=root QOS=normal JobState=RUNNING Reason=None Dependency=(null) Requeue=1 "
    "Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:02 TimeLimit=365-00:00:00 TimeMin=N/A "
    "SubmitTime=2026-11-30T10:17:38 EligibleTime=2026-11-30T10:17:39 AccrueTime=Unknown "
    "StartTime=2026-11-30T10:17:39 EndTime=2027-11-30T10:17:39 Deadline=N/A "
    "PreemptEligibleTime=2026-11-30T10:17:39 PreemptTime=None SuspendTime=None SecsPreSuspend=0 "
    "LastSchedEval=2026-11-30T10:17:39 Scheduler=Backfill Partition=debug AllocNode:Sid=localhost:9805 "
    "ReqNodeList=(null) ExcNodeList=(null) NodeList=localhost BatchHost=localhost NumNodes=1 NumCPUs=1 NumTasks=1 "
    "CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* "
    "MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK "
    "Contiguous=0 Licenses=(null) Network=(null) Command=(null) WorkDir=/tmp/mend2 sl/dir x StdErr=/dev/null "
    "StdIn=/dev/null StdOut=/dev/null Power= "
)
ARRAY = "".join(ARRAY_TASK.format(id=i, task=t) + "\n" for i, t in ((2282, 2), (2284, 1), (2283, 0)))


def test_values_with_spaces_and_equals_signs():
    info = fields(BATCH)
    assert info["JobId"] == "2281"
    assert info["JobName"] == "my job=x y"
    assert info["Command"] == "/tmp/mend2 sl/dir x/job a.sh arg1 arg two"
    assert info["WorkDir"] == "/tmp/mend2 sl/dir x"
    assert info["StdOut"] == info["StdErr"] == "/tmp/mend2 sl/out 2281.txt"
    assert info["TRES"] == "cpu=1,node=1,billing=1"
    assert info["AllocNode:Sid"] == "localhost:9805" and info["ReqB:S:C:T"] == "0:0:*:*"
    assert info["Power"] == "" and info["Dependency"] == "(null)"
    assert "job" not in info and "my" not in info


def test_a_comment_cannot_hide_a_field_printed_before_it():
    info = fields(BATCH)
    assert info["Comment"] == "hello world Reason=fake"
    assert info["Reason"] == "None" and info["JobState"] == "RUNNING" and info["Restarts"] == "0"


def test_a_job_name_cannot_hide_a_field_printed_after_it(monkeypatch):
    """The name comes second, before JobState, Reason and Restarts: it runs to UserId."""
    line = BATCH.replace("JobName=my job=x y", "JobName=ft Restarts=2 JobState=FAILED Reason=TimeLimit")
    info = fields(line)
    assert info["JobName"] == "ft Restarts=2 JobState=FAILED Reason=TimeLimit"
    assert info["Restarts"] == "0" and info["JobState"] == "RUNNING" and info["Reason"] == "None"
    monkeypatch.setenv("SLURM_JOB_ID", "2281")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    assert stop_reason(15, info) == "cancelled"
    array = ARRAY_TASK.format(id=2284, task=1).replace("JobName=wrap", "JobName=w Restarts=3")
    assert fields(array)["JobName"] == "w Restarts=3" and fields(array)["Restarts"] == "0"


def test_every_field_of_a_plain_line_is_one_token():
    """Where no value holds a space, fields agrees with splitting the line at spaces."""
    line = ARRAY_TASK.format(id=2284, task=1).replace("/tmp/mend2 sl/dir x", "/tmp/dir")
    assert fields(line) == dict(token.split("=", 1) for token in line.split())


def test_first_line_only_and_empty_output():
    assert fields(ARRAY)["JobId"] == "2282" and fields(ARRAY)["ArrayTaskId"] == "2"
    assert fields("") == {} and fields("\n") == {}
    assert fields("Comment= Reason=None") == {"Comment": "", "Reason": "None"}


def test_stop_reason_reads_the_real_reason(monkeypatch):
    """A job whose comment says ``Reason=TimeLimit`` and that is cancelled, not timed out."""
    monkeypatch.setenv("SLURM_JOB_ID", "2281")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    line = BATCH.replace("Reason=fake", "Reason=TimeLimit")
    assert fields(line)["Reason"] == "None"
    assert stop_reason(15, fields(line)) == "cancelled"
