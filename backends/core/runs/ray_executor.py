"""Runs as Ray jobs, through Ray's Job Submission API; the studio stays the control plane.

Each run is one job whose entrypoint is the worker command every run has (through
`backends.core.runs.rayjob`, which first checks that the job sees the run directory), with the run's
request (`launch.cpus`, `launch.gpus`, `launch.processes`; executors.request_of) as the job's
entrypoint resources. A run of `launch.processes: N` runs `accelerate launch` inside its job,
as it does locally. Everything else goes through the run directory, which must be on storage
the studio and the cluster's nodes share at the same path:

- status.json records `executor: ray`, `ray_address`, `ray_job_id`, the `request` and the job's
  last seen status, so a restarted studio finds every job again from the run directories;
- a job Ray reports ended (FAILED, STOPPED, or SUCCEEDED without a final state) while the run is
  not final becomes `failed` with Ray's reason (`stopped` when the run was asked to stop);
- Stop writes the STOP file first; a run still going `stop_grace_s` after it has its job stopped;
- pending runs are submitted oldest first, one waiting in Ray at a time: Ray fails a job that
  waits for resources longer than its RAY_JOB_START_TIMEOUT_SECONDS (15 min), so the queue
  stays here and a later run does not overtake an earlier one.

Ray is imported only when a RayExecutor first talks to the cluster (`pip install -e .[cluster]`).
"""

from __future__ import annotations

import secrets
import shlex
import threading
import time
from pathlib import Path
from typing import Any

from backends.core.runs.executors import Executor, ExecutorConfig, ExecutorError, Request, request_of_run
from backends.core.runs.launcher import REPO_ROOT, Launcher
from backends.core.runs.rayjob import NOT_SHARED
from backends.core.runs.rundir import RunDir, RunState, list_runs

CHECK_FILE = ".cluster-check"  # in the runs folder: the token a check job must read
ACTIVE = ("PENDING", "RUNNING")
SHARED_HINT = (
    "the runs folder must be on storage that the studio and every Ray node mount at the same "
    "path (NFS, a cluster filesystem); see docs/SCALING.md"
)


def normalize_address(address: str | None) -> str:
    if not address:
        raise ExecutorError(
            "`--executor ray` needs `--ray-address` (the Ray dashboard's address, e.g. "
            "http://head:8265) or RAY_ADDRESS in the environment"
        )
    return address if "://" in address else f"http://{address}"


def job_reason(sid: str, info: Any) -> str:
    """Ray's reason for a job's end, in one line: its status, exit code and message, with the
    last line of the log tail Ray appends (the job's own words, e.g. the storage check's)."""
    status = str(info.status)
    code = getattr(info, "driver_exit_code", None)
    lines = [ln.strip() for ln in (info.message or "").splitlines() if ln.strip()]
    head = lines[0] if lines else "no message"
    tail = f" ... {lines[-1]}" if len(lines) > 1 else ""
    killed = " (137: killed by SIGKILL: by hand, or out of memory)" if code == 137 else ""
    exit_code = f", exit code {code}{killed}" if code is not None else ""
    if code == NOT_SHARED and "not shared" not in tail:
        # the job's own line can reach Ray's log after the job's end is reported (seen under
        # load): its exit code says the same
        node = getattr(info, "driver_node_id", None) or "that ran the job"
        tail = f" ... the runs folder is not shared with Ray node {node} (the job could not read the studio's token)"
    return f"Ray job {sid} {status}{exit_code}: {head}{tail}"[:600]


class RayExecutor(Executor):
    def __init__(self, launcher: Launcher, config: ExecutorConfig) -> None:
        super().__init__(launcher, config)
        self.address = normalize_address(config.ray_address)
        self.python = config.python or launcher.python
        self.code_dir = config.code_dir or str(REPO_ROOT)
        self._client: Any = None
        self._lock = threading.Lock()

    # --- talking to the cluster --------------------------------------------------------
    def client(self) -> Any:
        if self._client is None:
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError as e:
                raise ExecutorError(
                    f"`--executor ray` needs Ray ({e}); install the extra: pip install -e .[cluster]"
                ) from None
            try:
                self._client = JobSubmissionClient(self.address)
            except (OSError, RuntimeError, ValueError) as e:
                raise ExecutorError(f"cannot reach Ray at {self.address}: {e}") from None
        return self._client

    def _job(self, sid: str) -> Any | None:
        """The job's details; None when the cluster does not know it."""
        try:
            return self.client().get_job_info(sid)
        except RuntimeError as e:
            if "does not exist" in str(e) or "404" in str(e):
                return None
            raise ExecutorError(f"Ray at {self.address}: {e}") from None
        except OSError as e:
            raise ExecutorError(f"cannot reach Ray at {self.address}: {e}") from None

    def entrypoint(self, run_path: str | Path, token: str, check: bool = False) -> str:
        """The job's shell command: the worker, behind the shared-storage check."""
        args = ["-m", "backends.core.runs.rayjob", *(["--check"] if check else []), str(run_path), token]
        return f"cd {shlex.quote(self.code_dir)} && " + shlex.join([self.python, *args])

    def command_line(self, run: RunDir) -> str:
        sid = run.read_status().get("ray_job_id")
        local = self.launcher.command_line(run)
        return f"{local}   (as Ray job {sid} at {self.address})" if sid else local

    def where(self) -> str:
        return f"Ray at {self.address}"

    def placement(self, request: Request) -> str:
        return f"**Runs on:** {self.where()} · **request:** {request.describe()}"

    def check(self, timeout_s: float = 120.0) -> str:
        """A job that must read a token written here into the runs folder: the cluster is up, the
        code and Python are where the entrypoint says, and the runs folder is shared."""
        client = self.client()  # first: an unreachable cluster leaves nothing in the runs folder
        token = secrets.token_hex(8)
        marker = self.runs_dir / CHECK_FILE
        self._write_token(marker, token)
        try:
            sid = client.submit_job(entrypoint=self.entrypoint(marker, token, check=True))
        except (OSError, RuntimeError) as e:
            raise ExecutorError(f"Ray at {self.address} refused a job: {e}") from None
        deadline = time.monotonic() + timeout_s
        while True:
            info = self._job(sid)
            if info is not None and str(info.status) not in ACTIVE:
                break
            if time.monotonic() > deadline:
                client.stop_job(sid)
                raise ExecutorError(f"Ray at {self.address} did not run a check job within {timeout_s:.0f} s")
            time.sleep(0.2)
        if str(info.status) != "SUCCEEDED":
            raise ExecutorError(
                f"the Ray cluster at {self.address} cannot run this studio's runs: "
                f"{job_reason(sid, info)}; {SHARED_HINT}"
            )
        return f"runs go to {self.where()}; a job there sees {self.runs_dir}"

    def _write_token(self, path: Path, token: str) -> None:
        """The studio's side of the storage check (a test replaces it to act out storage the
        cluster does not share)."""
        path.write_text(token, encoding="utf-8")

    # --- submitting ----------------------------------------------------------------------
    def _waiting_in_ray(self) -> bool:
        """Whether a run submitted from here still waits in Ray for resources."""
        for run in list_runs(self.runs_dir):
            st = run.read_status()
            if st.get("executor") == "ray" and st["state"] == "pending" and st.get("ray_job_id"):
                info = self._job(st["ray_job_id"])
                if info is not None and str(info.status) == "PENDING":
                    return True
        return False

    def submit(self, run: RunDir) -> None:
        """Submit a claimed run as a Ray job; a refused submission fails the run with the reason."""
        request = request_of_run(run)
        token = secrets.token_hex(8)
        sid = f"{run.run_id}-{token[:6]}"
        entrypoint = self.entrypoint(run.path, token)
        self._write_token(run.cluster_marker_path, token)
        # Recorded before the job exists: a studio that dies right after still finds it.
        run.update_status(
            executor="ray",
            ray_address=self.address,
            ray_job_id=sid,
            request=request.as_dict(),
            command=entrypoint,
        )
        try:
            self.client().submit_job(
                entrypoint=entrypoint,
                submission_id=sid,
                entrypoint_num_cpus=request.cpus,
                entrypoint_num_gpus=request.gpus or None,
                metadata={"alignment_studio_run": run.run_id, "run_dir": str(run.path)},
            )
        except (OSError, RuntimeError, ExecutorError) as e:
            run.try_finalize(RunState.FAILED, error=f"not submitted to Ray at {self.address}: {e}"[:600])
            return
        print(
            f"run {run.run_id}: submitted to {self.where()} as job {sid} ({request.describe()})", flush=True
        )

    def schedule(self) -> list[RunDir]:
        with self._lock:
            pending = []
            for run in list_runs(self.runs_dir):
                st = run.read_status()
                if st["state"] == "pending" and not st.get("claimed") and st.get("kind") != "pipeline":
                    pending.append((st.get("created_at", 0), run))
            if not pending or self._waiting_in_ray():
                return []
            for _, run in sorted(pending, key=lambda p: p[0]):
                if run.claim("ray"):  # another scheduler (a pipeline process) may have taken it
                    self.submit(run)
                    return [run]  # one waiting in Ray at a time; the next tick submits the next
            return []

    # --- watching and stopping -----------------------------------------------------------
    def reconcile(self) -> list[RunDir]:
        """Local processes (pipelines) as the launcher does, then every unfinished Ray run
        against its job."""
        failed = self.launcher.reconcile()
        for run in list_runs(self.runs_dir):
            st = run.read_status()
            sid = st.get("ray_job_id")
            if st.get("executor") != "ray" or not sid or RunState(st["state"]).is_finalized:
                continue
            info = self._job(sid)
            if info is None:
                reason = (
                    f"Ray at {self.address} has no job {sid} (submitted to "
                    f"{st.get('ray_address')}); the cluster was restarted or is another one"
                )
                if run.try_finalize(RunState.FAILED, error=reason):
                    failed.append(run)
                continue
            status = str(info.status)
            if status != st.get("ray_job_status"):
                run.update_status(ray_job_status=status)
            if status in ACTIVE:
                self._enforce_stop(run, st, sid)
                continue
            if run.state().is_finalized:
                continue  # the worker wrote its end as the job ended
            reason = job_reason(sid, info)
            if status == "STOPPED" and run.stop_requested():
                moved = run.try_finalize(RunState.STOPPED, error=f"stopped without a final save: {reason}")
            else:
                moved = run.try_finalize(RunState.FAILED, error=reason)
            if moved:
                failed.append(run)
        return failed

    def _enforce_stop(self, run: RunDir, st: dict[str, Any], sid: str) -> None:
        """A run asked to stop (STOP file) that is still going after the grace period has its
        job stopped. The file's age counts, so this survives a restart of the studio."""
        if st.get("ray_stop_sent_at") or not run.stop_requested():
            return
        try:
            waited = time.time() - run.stop_path.stat().st_mtime
        except FileNotFoundError:
            return
        if waited < self.config.stop_grace_s:
            return
        self._stop_job(sid)
        run.update_status(ray_stop_sent_at=time.time())
        print(f"run {run.run_id}: still going {waited:.0f} s after STOP; Ray job {sid} stopped", flush=True)

    def _stop_job(self, sid: str) -> None:
        try:
            self.client().stop_job(sid)
        except RuntimeError as e:
            raise ExecutorError(f"Ray at {self.address} could not stop job {sid}: {e}") from None
        except OSError as e:
            raise ExecutorError(f"cannot reach Ray at {self.address}: {e}") from None

    def stop(self, run: RunDir) -> str:
        st = run.read_status()
        sid = st.get("ray_job_id")
        if sid and st["state"] == "pending" and not st.get("pid"):
            # Still waiting in Ray: nothing to save, so the job goes at once.
            self._stop_job(sid)
            run.try_finalize(RunState.STOPPED, error="cancelled before it started (its Ray job was stopped)")
            return f"run {run.run_id} cancelled; Ray job {sid} stopped"
        said = self.launcher.stop(run)
        if sid and not RunState(run.read_status()["state"]).is_finalized:
            said += (
                f"; its Ray job {sid} is stopped if it still runs {self.config.stop_grace_s:.0f} s from now"
            )
        return said

    def kill(self, run: RunDir) -> str:
        sid = run.read_status().get("ray_job_id")
        run.request_stop()  # so the job's end reads as a stop, not a failure
        if sid:
            self._stop_job(sid)
            return f"run {run.run_id}: Ray job {sid} stopped"
        return self.launcher.stop(run)
