"""Fault injection over playbooks/migrate.yml on the demo platform (inventories/demo).

Each injection migrates the demo source into target names of its own (its own bucket, database, experiment prefix,
event indices, landing directory, state directory), so injections never see each other's results:

- a kill: the play is started, and once the chosen step is recorded running, after a delay that puts the kill at
  one of ``POINTS`` points spread over that step's duration (measured by a clean run first), the play dies at once:
  SIGKILL to ``ansible-playbook``'s process group and to every process it started (Ansible's workers run in
  sessions of their own). A module left running as an async job on its host stops itself when its heartbeat runs
  out; the injection waits for that.
- a restart: one server (S3, MongoDB, MLflow or search, target side) is stopped and started again (same ports, same
  data) in the middle of the step that writes to it; the play may fail or ride it out.

After each fault every step the state file records done is checked at the target - no step reported done before
it was -; then the play is run again to completion and the whole target is checked against the source exactly:
every object, document, event, run and metric point there, none twice.

Bounded and repeatable: which injections run, and their points, come from a seed (``MLOPS_FAULTS_SEED``, default
23). ``make test`` runs a small set (``MLOPS_FAULTS=ci``: CI_KILLS kills, in steps and at points the seed picks, and
CI_RESTARTS restart); ``make faults`` runs the full set (``MLOPS_FAULTS=full``: a clean run, then POINTS kills in each
step and a restart of each server). The test prints what ran and how long it took.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time

import pytest

from tests.integration.ansible_run import run_playbook, start_playbook
from tests.integration.demo_target import check_target, Namespace, STEP_CHECKS
from tests.stack import demo_platform
from tests.stack.process import restart_server

pytestmark = pytest.mark.integration

PLAYBOOK = "playbooks/migrate.yml"
INVENTORY = "inventories/demo"
STEPS = ("files_bulk", "s3", "mongo", "events", "trackers", "files_delta", "verify")
POINTS = 10
# the server each restart stops, and the step that writes to it then
RESTARTS = {"s3": "s3", "mongo": "mongo", "search": "events", "mlflow": "trackers"}
CI_KILLS, CI_RESTARTS = 1, 1
# seconds each step took in a clean run on a 2-core machine: where the small set places its points (the full set
# measures its own clean run first)
STEP_SECONDS = {"files_bulk": 1.7, "s3": 2.5, "mongo": 9.3, "events": 3.7, "trackers": 15.7, "files_delta": 5.0,
                "verify": 13.9}
SEED = int(os.environ.get("MLOPS_FAULTS_SEED", "23"))
FULL = os.environ.get("MLOPS_FAULTS", "ci") == "full"
HEARTBEAT = 10  # seconds a job left running by a killed play goes on before it stops itself


def plan(seed=SEED, full=FULL):
    """The injections, in order: ("kill", step, point fraction) and ("restart", server, step)."""
    rng = random.Random(seed)
    kills = [("kill", step, (point + rng.random()) / POINTS) for step in STEPS for point in range(POINTS)]
    restarts = [("restart", server, step) for server, step in RESTARTS.items()]
    if not full:  # a few steps, one point in each
        steps = set(rng.sample(STEPS, CI_KILLS))
        kills = [rng.choice([kill for kill in kills if kill[1] == step]) for step in STEPS if step in steps]
        restarts = rng.sample(restarts, CI_RESTARTS)
    return kills + restarts


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with demo_platform.running_stack(str(tmp_path_factory.mktemp("fault-platform"))) as (stack, state):
        yield stack, state


def step_states(state_dir):
    path = os.path.join(state_dir, "migration-state.sqlite")
    if not os.path.exists(path):
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return {name: {"state": state, "started": started, "finished": finished}
                for name, state, started, finished in db.execute("SELECT name, state, started, finished FROM steps")}
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def descendants(pid):
    """Every process whose ancestry leads to ``pid`` (Ansible's workers leave its session, not its tree)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def kill_play(proc):
    """SIGKILL the play: its process group and every process it started."""
    tree = descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)


def wait_for_orphans(state_dir, timeout=HEARTBEAT * 6):
    """Wait until the jobs a killed play left on the hosts have stopped (their progress records name them)."""
    deadline = time.monotonic() + timeout
    for name in os.listdir(state_dir) if os.path.isdir(state_dir) else []:
        if not name.endswith(".progress.json"):
            continue
        try:
            with open(os.path.join(state_dir, name), encoding="utf-8") as handle:
                pid = json.load(handle).get("pid")
        except (OSError, ValueError):
            continue
        while pid and not gone(pid):
            assert time.monotonic() < deadline, f"the job {pid} ({name}) runs on after its heartbeat timed out"
            time.sleep(0.2)


class Injector:
    """Runs the main job into one namespace per injection, with faults."""

    def __init__(self, stack, state, tmp_path):
        self.stack, self.state, self.tmp_path = stack, state, tmp_path
        self.env = {"MLOPS_DEMO_DIR": state["workdir"]}

    def state_dir(self, ns):
        return os.path.join(self.state["workdir"], f"{ns.name}-state")

    def _dir(self, ns):
        path = self.tmp_path / ns.name
        path.mkdir(exist_ok=True)
        return str(path)

    def run(self, ns, expect_rc=0):
        return run_playbook(PLAYBOOK, INVENTORY, self._dir(ns), env_vars=self.env, expect_rc=expect_rc,
                            extra_vars=dict(ns.extra_vars(), migration_progress_heartbeat=HEARTBEAT))

    def start(self, ns):
        return start_playbook(PLAYBOOK, INVENTORY, self._dir(ns), env_vars=self.env,
                              output=os.path.join(self._dir(ns), "faulted-run.txt"),
                              extra_vars=dict(ns.extra_vars(), migration_progress_heartbeat=HEARTBEAT))

    def wait_running(self, ns, step, proc):
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            states = step_states(self.state_dir(ns))
            if step in states:
                return states
            assert proc.poll() is None, f"the play ended before step {step} started: {states}"
            time.sleep(0.05)
        raise AssertionError(f"step {step} did not start within 10 minutes")

    def check_done_steps(self, ns, fault):
        """No step reported done before it was: each done step's promise holds at the target now."""
        states = step_states(self.state_dir(ns))
        for step, record in states.items():
            if record["state"] == "done" and step in STEP_CHECKS:
                try:
                    STEP_CHECKS[step](self.state, ns)
                except AssertionError as exc:
                    raise AssertionError(f"{fault}: step {step} is recorded done, but the target says otherwise: "
                                         f"{exc}") from exc
        return states

    def finish(self, ns, fault):
        """Run again to completion; the whole target must equal what the source promises."""
        result = self.run(ns)
        states = step_states(self.state_dir(ns))
        assert {name: record["state"] for name, record in states.items()} == {name: "done" for name in STEPS}, \
            f"{fault}: {states}"
        try:
            check_target(self.state, ns.bucket, ns.db, ns.prefix, ns.fileserver, ns.company)
        except AssertionError as exc:
            raise AssertionError(f"{fault}: after the re-run the target differs from the source: {exc}") from exc
        return result

    def kill(self, ns, step, fraction, duration):
        fault = f"kill in {step} at {fraction:.0%} of its {duration:.1f} s"
        proc = self.start(ns)
        try:
            self.wait_running(ns, step, proc)
            time.sleep(fraction * duration)
        finally:
            killed = proc.poll() is None
            kill_play(proc)
        at_kill = self.check_done_steps(ns, fault)
        wait_for_orphans(self.state_dir(ns))
        self.check_done_steps(ns, fault)  # and once the orphaned jobs stopped
        rerun = self.finish(ns, fault)
        running = [name for name, record in at_kill.items() if record["state"] == "running"]
        if killed and running:  # the dead run's lease is taken over, not waited for
            said = " ".join((rerun.stdout + rerun.stderr).split())  # Ansible's warnings go to stderr
            assert "took the lease over from run" in said, f"{fault}: {rerun.stderr[-3000:]}"
        return {"fault": fault, "killed": killed, "running at the kill": running}

    def restart(self, ns, server, step, delay):
        fault = f"restart of the target {server} server {delay:.1f} s into step {step}"
        proc = self.start(ns)
        try:
            self.wait_running(ns, step, proc)
            time.sleep(delay)
            restart_server(self.stack[server]["target"])
            rc = proc.wait(timeout=900)
        finally:
            if proc.poll() is None:
                kill_play(proc)
        self.check_done_steps(ns, fault)
        wait_for_orphans(self.state_dir(ns))
        self.finish(ns, fault)
        return {"fault": fault, "first run exit": rc}


@pytest.fixture(scope="module")
def injector(platform, tmp_path_factory):
    stack, state = platform
    return Injector(stack, state, tmp_path_factory.mktemp("fault-runs"))


DONE = []  # what each injection did, for the summary
STARTED = []


@pytest.fixture(scope="module")
def durations(injector):
    """Each step's seconds: measured by a clean run (whose target must be exact) in the full set, else the table's."""
    STARTED.append(time.monotonic())
    if not FULL:
        return STEP_SECONDS
    base = Namespace.second("base")
    injector.finish(base, "a clean run")
    return {name: max(0.5, record["finished"] - record["started"])
            for name, record in step_states(injector.state_dir(base)).items()}


@pytest.mark.parametrize("index, injection", list(enumerate(plan())),
                         ids=[f"{kind}-{what}" for kind, what, _value in plan()])
def test_a_fault_leaves_no_step_done_early_and_an_exact_target_after_a_rerun(injector, durations, index, injection):
    kind, what, value = injection
    ns = Namespace.second(f"f{SEED}x{index}")
    if kind == "kill":
        DONE.append(injector.kill(ns, what, value, durations[what]))
    else:
        DONE.append(injector.restart(ns, what, value, min(2.0, durations[value] / 2)))


def test_every_injection_ran(capsys):
    """The summary: how many injections ran, and how long they took (printed in the test's output, CI's log)."""
    seconds = time.monotonic() - STARTED[0] if STARTED else 0.0
    with capsys.disabled():
        print(f"\nfault injection (seed {SEED}, {'full' if FULL else 'ci'} set): {len(DONE)} injections"
              f"{' and a clean run' if FULL else ''} in {seconds:.0f} s")
        for entry in DONE:
            print("  " + json.dumps(entry))
    assert len(DONE) == len(plan())
