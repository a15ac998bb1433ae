"""A real SLURM cluster for the tests in tests/slurm/, and helpers to drive sweeps on it.

The session fixture ``slurm`` finds a running cluster from the environment that
``.ci/slurm/start`` prints (``SLURM_CONF``, else ``$EXMAN_SLURM_DIR`` or
/tmp/exman-slurm), or, when ``EXMAN_SLURM=1``, starts one through
``.ci/slurm/start`` (installing the packages on Debian) and stops it at the end.
Without ``EXMAN_SLURM=1`` the tests skip with the reason when ``sbatch`` is absent
or no cluster answers; with it, a cluster that cannot start is an error.

    .ci/slurm/start && EXMAN_SLURM=1 python -m pytest tests/slurm    # or just the second part

``EXMAN_SLURM_KEEP=1`` leaves a cluster this fixture started running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from exman.slurm import fields as slurm_fields

REPO = Path(__file__).resolve().parents[2]
START = REPO / ".ci" / "slurm" / "start"
STOP = REPO / ".ci" / "slurm" / "stop"
DEFAULT_DIR = "/tmp/exman-slurm"

# One exman script for the SLURM tests: records a run, logs one metric, can sleep (to be caught
# running) and can print a marker the test waits for.
SCRIPT = """
import os, sys, time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--x", type=int, default=0)
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()
with args.safe_experiment as run:
    print(f"run {run.id} started on {os.uname().nodename} job={os.environ.get('SLURM_JOB_ID')} "
          f"task={os.environ.get('SLURM_ARRAY_TASK_ID')} restart={os.environ.get('SLURM_RESTART_COUNT')}",
          flush=True)
    time.sleep(args.sleep)
    run.log(y=args.x * 2)
"""


class SlurmUnavailable(Exception):
    pass


def _exman_command() -> list[str]:
    script = Path(sys.executable).parent / "exman"
    return [str(script)] if script.exists() else [sys.executable, "-m", "exman"]


class Cluster:
    """A reachable SLURM cluster: run its commands, look at jobs, requeue and cancel them."""

    def __init__(self, env: dict, folder: Path | None, started_here: bool):
        self.env = env  # what .ci/slurm/start prints: SLURM_CONF, EXMAN_SLURM_DIR
        self.folder = folder
        self.started_here = started_here

    # -- commands ------------------------------------------------------------------------------
    def run(self, *args, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a SLURM command (sinfo, squeue, scontrol, ...) against this cluster."""
        env = dict(os.environ)
        env.update(self.env)
        proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{shlex.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def config(self) -> dict:
        """``scontrol show config`` as a dict (MaxArraySize, KillWait, ...)."""
        out = self.run("scontrol", "show", "config").stdout
        return {k.strip(): v.strip() for k, _, v in (ln.partition("=") for ln in out.splitlines()) if v}

    def job(self, job_id) -> dict:
        """``scontrol show job -o ID`` as a dict (JobState, Reason, StartTime, Restarts, ...); {} once gone."""
        proc = self.run("scontrol", "show", "job", "-o", job_id, check=False)
        return slurm_fields(proc.stdout) if proc.returncode == 0 else {}

    def jobs(self, name: str | None = None) -> list[dict]:
        """Jobs in the queue, array tasks one by one (``squeue -r``): JobID, State, Reason, Name."""
        args = ["squeue", "-h", "-r", "-o", "%i|%T|%r|%j"]
        if name:
            args += ["--name", name]
        out = self.run(*args).stdout
        rows = [dict(zip(("JobID", "State", "Reason", "Name"), ln.split("|"))) for ln in out.splitlines() if ln]
        return rows

    def sacct(self, job_id) -> list[dict]:
        """``sacct`` rows of a job (array tasks and steps included): JobID, State, ExitCode, Elapsed."""
        out = self.run("sacct", "-n", "-P", "-j", job_id, "-o", "JobID,State,ExitCode,Elapsed").stdout
        return [dict(zip(("JobID", "State", "ExitCode", "Elapsed"), ln.split("|"))) for ln in out.splitlines() if ln]

    def wait_for(self, predicate, timeout: float, what: str, poll: float = 0.2):
        """Poll ``predicate()`` until it returns something true; fail the test after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(poll)

    def wait_state(self, job_id, states, timeout: float = 60) -> dict:
        """Wait until ``job_id`` (an array task like ``12_3`` works) is in one of ``states``."""
        states = {states} if isinstance(states, str) else set(states)

        def reached():
            info = self.job(job_id)
            return info if info.get("JobState") in states else None

        return self.wait_for(reached, timeout, f"job {job_id} in {'/'.join(sorted(states))}")

    # -- actions -------------------------------------------------------------------------------
    def scancel(self, job_id, *, signal: str | None = None, batch: bool = False) -> None:
        """``scancel`` a job or array task; ``signal=`` sends that signal instead of cancelling."""
        args = ["scancel"]
        if signal:
            args += ["--signal", signal]
        if batch:
            args.append("--batch")
        self.run(*args, job_id)

    def requeue(self, job_id) -> None:
        """``scontrol requeue``: SLURM kills the job (SIGCONT+SIGTERM, SIGKILL after KillWait) and
        queues it again, held ~120 s (``Reason=BeginTime``, AuthInfo ``cred_expire``)."""
        self.run("scontrol", "requeue", job_id)

    def release_requeued(self, job_id, timeout: float = 30) -> dict:
        """Make a requeued job eligible now instead of after ~120 s; returns its info once it runs.

        Measured on Slurm 22.05: ``scontrol release`` does not help (the job is not held, only
        begins later), ``scontrol update jobid=X StartTime=now`` makes it start at once. Two
        conditions: the job must have left COMPLETING (after KillWait at worst; while it is
        completing slurmctld still moves the begin time), and the new start must fall in a later
        second than the requeue: slurmd revoked the job's credentials up to the requeue time (in
        whole seconds), and a start in the same second ends the job at once, for good
        ("Killing non-startable batch JobId=N: Job credential revoked", state FAILED, exit 1).
        """
        info = self.wait_state(job_id, "PENDING", timeout)
        seen = time.time()  # the requeue happened before this
        time.sleep(max(0.0, int(seen) + 1.2 - time.time()))
        self.run("scontrol", "update", f"jobid={job_id}", "StartTime=now")
        return self.wait_state(job_id, {"RUNNING", "COMPLETING", "COMPLETED"}, timeout) or info

    def preempt(self, seconds: float = 5) -> str:
        """Submit a job to partition ``high`` needing every CPU of the node: the ``debug`` jobs
        running there are preempted (PreemptMode=REQUEUE). Returns its job id."""
        cpus = self.run("sinfo", "-h", "-p", "high", "-o", "%c").stdout.split()[0]
        out = self.run(
            "sbatch",
            "--parsable",
            "-p",
            "high",
            "-c",
            cpus,
            "-o",
            "/dev/null",
            "--job-name",
            "exman-preemptor",
            "--wrap",
            f"sleep {seconds}",
        ).stdout
        return out.strip().split(";")[0]

    def jobs_under(self, folder: Path) -> set:
        """Ids of the jobs in the queue whose output, batch script or working folder lies in ``folder``:
        what one test submitted (its sweeps' roots and scripts are in its own ``tmp_path``), and
        nothing of the other sessions and test runs that share the cluster."""
        out = self.run("squeue", "-h", "-O", "ArrayJobID:|,STDOUT:|,Command:|,WorkDir:|").stdout
        inside = str(Path(folder).resolve()) + os.sep
        return {
            fields[0].strip()
            for fields in (ln.split("|") for ln in out.splitlines() if ln)
            if any(f.strip().startswith(inside) for f in fields[1:])
        }

    def cancel_all(self, keep=(), only=None, timeout: float = 30) -> None:
        """Cancel every job in the queue but ``keep`` (or only those in ``only``) and wait until they have left it."""
        ids = {row["JobID"].split("_")[0] for row in self.jobs()} - set(keep)
        if only is not None:
            ids &= set(only)
        if not ids:
            return
        self.run("scancel", *sorted(ids), check=False)
        self.wait_for(
            lambda: not ({row["JobID"].split("_")[0] for row in self.jobs()} & ids),
            timeout,
            f"jobs {sorted(ids)} to leave the queue",
        )


# ---------------------------------------------------------------------------------------------
# finding or starting the cluster
# ---------------------------------------------------------------------------------------------


def _controller_port_open(conf: str) -> str | None:
    """A quick look before sinfo (which retries for ~20 s): None if slurmctld's port accepts."""
    import socket

    try:
        text = Path(conf).read_text()
    except OSError as exc:
        return f"cannot read {conf}: {exc.strerror}"
    host = re.search(r"^\s*SlurmctldHost\s*=\s*([^\s(#]+)(?:\(([^)]+)\))?", text, re.M | re.I)
    port = re.search(r"^\s*SlurmctldPort\s*=\s*(\d+)", text, re.M | re.I)
    if not host:
        return None  # configless or unusual: let sinfo decide
    address = host.group(2) or host.group(1)
    try:
        socket.create_connection((address, int(port.group(1)) if port else 6817), timeout=3).close()
    except OSError as exc:
        return f"slurmctld at {address}:{port.group(1) if port else 6817} does not answer ({exc.strerror or exc})"
    return None


def _answers(env: dict) -> str | None:
    """None if ``sinfo`` reaches the cluster of ``env``, else why not."""
    if env.get("SLURM_CONF"):
        closed = _controller_port_open(env["SLURM_CONF"])
        if closed:
            return closed
    full = dict(os.environ)
    full.update(env)
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=full, timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 15 s"
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["sinfo failed"])[-1]
    if not any(state in proc.stdout for state in ("idle", "mix", "alloc", "comp")):  # comp: a job is ending
        return f"no usable node (sinfo: {proc.stdout.split()})"
    return None


def _found_env() -> dict | None:
    if os.environ.get("SLURM_CONF"):
        env = {"SLURM_CONF": os.environ["SLURM_CONF"]}
        if os.environ.get("EXMAN_SLURM_DIR"):
            env["EXMAN_SLURM_DIR"] = os.environ["EXMAN_SLURM_DIR"]
        return env
    folder = os.environ.get("EXMAN_SLURM_DIR") or DEFAULT_DIR
    conf = Path(folder) / "etc" / "slurm.conf"
    if conf.exists():
        return {"SLURM_CONF": str(conf), "EXMAN_SLURM_DIR": folder}
    return None


def _parse_exports(text: str) -> dict:
    env = {}
    for line in text.splitlines():
        m = re.match(r"export (\w+)=(.*)$", line.strip())
        if m:
            env[m.group(1)] = shlex.split(m.group(2))[0] if m.group(2) else ""
    return env


def _start() -> dict:
    try:
        proc = subprocess.run([str(START)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable(f"{START} did not finish within 600 s") from None
    if proc.returncode != 0:
        raise SlurmUnavailable(f"{START} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return _parse_exports(proc.stdout)


@pytest.fixture(scope="session")
def slurm():
    """The cluster (a :class:`Cluster`); its env is set in ``os.environ`` for the session."""
    wanted = os.environ.get("EXMAN_SLURM") == "1"
    if not wanted and shutil.which("sbatch") is None:
        pytest.skip("SLURM tests: sbatch not found (run .ci/slurm/start, or set EXMAN_SLURM=1 to start a cluster)")
    env = _found_env()
    started = False
    if env is None or _answers(env) is not None:
        if not wanted:
            why = (
                "no SLURM_CONF, and no cluster in $EXMAN_SLURM_DIR or /tmp/exman-slurm"
                if env is None
                else _answers(env)
            )
            pytest.skip(f"SLURM tests: no cluster answers ({why}); run .ci/slurm/start or set EXMAN_SLURM=1")
        already = env is not None and Path(env.get("EXMAN_SLURM_DIR", DEFAULT_DIR), "pids").exists()
        try:
            env = _start()
        except SlurmUnavailable as exc:
            pytest.fail(f"EXMAN_SLURM=1 but the cluster did not start: {exc}", pytrace=False)
        started = not already
        why = _answers(env)
        if why is not None:
            pytest.fail(
                f"EXMAN_SLURM=1: .ci/slurm/start succeeded but the cluster does not answer: {why}", pytrace=False
            )
    if shutil.which("sbatch") is None:
        pytest.skip("SLURM tests: sbatch not found on PATH")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    folder = Path(env["EXMAN_SLURM_DIR"]) if env.get("EXMAN_SLURM_DIR") else None
    cluster = Cluster(env, folder, started)
    try:
        yield cluster
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if started and not os.environ.get("EXMAN_SLURM_KEEP"):
            subprocess.run([str(STOP), str(folder or DEFAULT_DIR)], capture_output=True, timeout=120)


@contextlib.contextmanager
def _one_test_at_a_time(cluster: Cluster):
    """One test at a time on the cluster, across test sessions (CI runs its two environments side
    by side on one cluster): a test that preempts the whole node, or times its tasks' start, must
    not meet another session's jobs."""
    folder = cluster.folder if cluster.folder and os.access(cluster.folder, os.W_OK) else Path(tempfile.gettempdir())
    with open(folder / "exman-tests.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(autouse=True)
def _own_jobs_only(request):
    """Every job a SLURM test submitted is cancelled when it ends, whatever happened; only those:
    the cluster may be shared with other test runs (found by their folders, see ``jobs_under``)."""
    if "slurm" not in request.fixturenames:
        yield
        return
    cluster = request.getfixturevalue("slurm")
    folder = request.getfixturevalue("tmp_path")
    with _one_test_at_a_time(cluster):
        before = {row["JobID"].split("_")[0] for row in cluster.jobs()}
        yield
        cluster.cancel_all(keep=before, only=cluster.jobs_under(folder))


# ---------------------------------------------------------------------------------------------
# sweeps as subprocesses, with a hard timeout
# ---------------------------------------------------------------------------------------------


class SweepTimeout(AssertionError):
    pass


class SweepProcess:
    """``exman sweep ...`` running in its own process group, output in files.

    ``wait(timeout)`` kills the whole process group with SIGKILL when the time is up and
    raises :class:`SweepTimeout` (an AssertionError, so the test fails with the output).
    """

    def __init__(self, args, cwd: Path, env: dict | None = None):
        self.args = [str(a) for a in args]
        self.cwd = Path(cwd)
        self.out_path = self.cwd / f"sweep-{time.monotonic_ns()}.out"
        full = dict(os.environ)
        full["PYTHONPATH"] = os.pathsep.join([str(REPO), full.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        full.update(env or {})
        self._out = open(self.out_path, "wb")
        self.began = time.monotonic()
        self.proc = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.returncode: int | None = None
        self.seconds: float | None = None

    @property
    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def sweep_id(self) -> str | None:
        m = re.search(r"sweep (\S+): \d+ run\(s\), launcher", self.output)
        return m.group(1) if m else None

    def wait_output(self, pattern: str, timeout: float) -> re.Match:
        """Wait until the output matches ``pattern`` (a regex); fail (and kill) after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.output)
            if m:
                return m
            if self.proc.poll() is not None:
                self._finish()
                raise AssertionError(f"sweep ended ({self.returncode}) before printing {pattern!r}:\n{self.output}")
            if time.monotonic() > deadline:
                self.kill()
                raise SweepTimeout(
                    f"no {pattern!r} in the sweep's output within {timeout} s; killed it:\n{self.output}"
                )
            time.sleep(0.1)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the sweep process only (as a Ctrl-C on its terminal would reach it)."""
        self.proc.send_signal(sig)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._finish()

    def _finish(self) -> None:
        self.returncode = self.proc.wait()
        if self.seconds is None:
            self.seconds = time.monotonic() - self.began
        self._out.close()

    def wait(self, timeout: float) -> int:
        """The exit status; after ``timeout`` s the process group is killed and the test fails."""
        try:
            self.proc.wait(timeout=max(0.0, self.began + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise SweepTimeout(
                f"exman sweep did not end within {timeout} s; killed its process group "
                f"(exit {self.returncode}). Output:\n{self.output}"
            ) from None
        self._finish()
        return self.returncode


@pytest.fixture
def sweep_script(tmp_path) -> Path:
    """The SLURM tests' exman script (``--x``, ``--sleep``) in the test's temp folder."""
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture
def start_sweep(slurm, tmp_path):
    """Start ``exman --root ROOT sweep ARGS -- python script.py`` in the background.

    ``start_sweep("--launcher", "submitit", "-p", "x=1,2", script=path, root=...)`` returns a
    :class:`SweepProcess`; every one still running at the end of the test is killed.
    ``start_sweep("--resume", ID, command=[], root=...)`` runs one without a command.
    """
    started = []

    def start(
        *args,
        script: Path | None = None,
        root: Path | None = None,
        command=None,
        cwd: Path | None = None,
        env: dict | None = None,
    ) -> SweepProcess:
        root = root or tmp_path / "root"
        if command is None:
            command = [sys.executable, str(script)]
        tail = ["--", *command] if command else []
        proc = SweepProcess(
            [*_exman_command(), "--root", root, "sweep", *args, *tail],
            cwd=cwd or (script.parent if script else tmp_path),
            env=env,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.kill()


@pytest.fixture
def run_sweep(start_sweep):
    """Run a sweep to its end with a hard timeout (default 120 s): the SweepProcess, finished."""

    def run(*args, script: Path, timeout: float = 120, **kwargs) -> SweepProcess:
        proc = start_sweep(*args, script=script, **kwargs)
        proc.wait(timeout)
        return proc

    return run


def read_runs(root: Path, sweep_id: str | None = None) -> list[dict]:
    """Every run.json under ``root`` (runs/, fails/, tmp/), optionally of one sweep only."""
    import json

    found = []
    for sub in ("runs", "fails", "tmp"):
        for path in sorted((Path(root) / sub).glob("*/run.json")):
            meta = json.loads(path.read_text())
            meta["_path"] = str(path.parent)
            if sweep_id is None or meta.get("sweep") == sweep_id:
                found.append(meta)
    return found


@pytest.fixture
def runs_of():
    """``runs_of(root, sweep_id)``: the runs' run.json contents, by cell (a dict of lists)."""

    def by_cell(root: Path, sweep_id: str | None = None) -> dict:
        cells: dict = {}
        for meta in read_runs(root, sweep_id):
            cells.setdefault(int(meta["sweep_cell"]), []).append(meta)
        return cells

    return by_cell


@pytest.fixture
def exman_cli(slurm, tmp_path):
    """``exman_cli(root, "sweep", "--status", ID, timeout=30)``: one ``exman --root ROOT ...`` process
    run to its end with a hard timeout (a new process each time, as from another login node)."""

    def run(root: Path, *args, timeout: float = 30) -> SweepProcess:
        proc = SweepProcess([*_exman_command(), "--root", root, *args], cwd=tmp_path)
        proc.wait(timeout)
        return proc

    return run
