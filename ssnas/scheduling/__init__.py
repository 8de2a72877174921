"""Scheduling: one scheduler per runs folder starts every queued run's worker (torch-free, click-free).

- `executor`: the `Executor` protocol (start, watch and stop one run's worker), `WorkerStatus`, and
  `WorkerExit`, the exit codes of `python -m ssnas.worker`.
- `local`: `LocalExecutor`, workers as subprocesses of this machine (Ray's is ssnas.cluster.executor).
- `warm`: the fork servers (`python -m ssnas.forkserver`) that fork warm workers, one per device slot.
- `scheduler`: `Scheduler`, the queue's rules: oldest first, a child after its parent, at most
  `max_parallel` local workers on one device slot each, a chain's next stage prestarted on its slot.
- `state`: the folder's scheduler lock (`runs/scheduler.lock`) and state file (`runs/scheduler.json`:
  who runs the queue, and its settings).
- `daemon`: `python -m ssnas.scheduling.daemon --runs DIR`, the scheduler process, and
  `ensure_scheduler`, which starts one when the folder has none.
- `environment`: what a submission records of this machine (git commit, host, package versions).
"""
