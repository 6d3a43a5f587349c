"""Where candidates are evaluated: in this process, in worker processes of this machine, or in a Ray actor pool.

An `Evaluator` takes one generation's candidates at once and gives their outcomes back in the order asked, so
a search is the same whatever evaluates it: same candidates, same fitness, same stored rows in the same order.
`InProcess` holds one `Resident` (the sources and the model the candidates are written into). `LocalPool`
spawns one worker process per GPU of this machine (or a chosen number of CPU workers), each with a `Resident`
of its own; it needs nothing beyond the standard library and is the default where a machine has several GPUs.
`RayPool` holds one `Resident` per Ray actor, for several machines (a cluster) or when Ray is asked for; Ray is
imported only then and its scheduling is Ray's own `ray.util.ActorPool`. In every pool each worker loads its
sources once, at its start, and only genotypes and outcomes travel.

Why a hand-written pool beside Ray: one host does not need a cluster, Ray's 79 MB wheel is a heavy dependency
for a lab server with two GPUs, and a pipe per worker carries a genotype (a few hundred floats) and an outcome
(a dict of metric means) with less overhead than Ray's object store. `multiprocessing.Pool` does not fit: its
workers can not be given a GPU each at start, and a worker that dies takes the whole pool's map with it silently.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import pickle
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field

from rp_eval import settings as app_settings
from rp_eval.errors import RpEvalError
from rp_eval.evolve.genome import Genome, decode, parse_genome

FitnessFn = Callable[[object, str, int | None, int], tuple[float, dict]]  # (resident, split, limit, seed)
ENV_PREFIXES = ("RP_EVAL_", "HF_", "TRANSFORMERS_")  # what an actor must see as the driver does


class PoolError(RpEvalError):
    """A Ray pool that can not start: Ray missing, no cluster at the address, no room for the actors."""


class PoolSettings(BaseModel, frozen=True, extra="forbid"):
    """Ray: `address` "" (start a local Ray instance), "auto" or HOST:PORT (join a running cluster); `actors`
    how many Ray actors (0: one per GPU of the cluster, or one on a cluster without GPUs). Either one asks for
    Ray. Without them, `workers`: worker processes on this machine (0: one per GPU where there are several,
    else evaluation in this process; 1: one worker process; on a machine without GPUs, CPU workers)."""

    address: str = ""
    actors: int = Field(0, ge=0)
    workers: int = Field(0, ge=0)

    @property
    def wanted(self) -> bool:
        return bool(self.address or self.actors)


@dataclass
class Job:
    genotype: list[float]
    seed: int  # DARE's mask seed
    split: str
    limit: int | None
    data_seed: int


@dataclass
class Outcome:
    fitness: float | None  # None: failed (see `error`)
    metrics: dict = field(default_factory=dict)
    build_seconds: float = 0.0
    eval_seconds: float = 0.0
    error: str = ""
    # where the time went, in seconds: "generation" and "metrics" (parts of eval_seconds, where the fitness
    # reports them); through a worker pool also "transfer" (the job to the worker and the outcome back) and
    # "queued" (from the generation's start until a worker took the job)
    stages: dict = field(default_factory=dict)
    worker: int = 0


class Evaluator(Protocol):
    num_layers: int

    def map(self, jobs: list[Job]) -> Iterator[Outcome]:
        """The outcomes of `jobs`, in their order, each as soon as it (and those before it) are done."""
        ...

    def close(self) -> None: ...


def run_job(resident, genome: Genome, fitness_fn: FitnessFn, job: Job) -> Outcome:
    """Write one candidate into the resident model and score it; a candidate that breaks is an outcome, not
    an exception, so the run goes on."""
    decoded = decode(genome, resident.num_layers, np.asarray(job.genotype, dtype=float))
    t0 = time.perf_counter()
    resident.seconds = {}  # the fitness adds its generation and metrics seconds here (search.role_play_fitness)
    try:
        resident.build(decoded, seed=job.seed)
        resident.settle()  # the build's GPU work ends here, not inside the fitness's first prefill
        t1 = time.perf_counter()
        fit, metrics = fitness_fn(resident, job.split, job.limit, job.data_seed)
        t2 = time.perf_counter()
    except (RuntimeError, ValueError) as err:
        return Outcome(None, error=str(err)[:500])
    if fit is None or not math.isfinite(fit):
        return Outcome(None, build_seconds=t1 - t0, error="the fitness is not a number")
    return Outcome(float(fit), dict(metrics), t1 - t0, t2 - t1, stages=dict(resident.seconds))


class InProcess:
    """Candidates built and scored one after another in this process."""

    def __init__(self, genome: Genome, fitness_fn: FitnessFn, device: str | None = None) -> None:
        from rp_eval.evolve.inmemory import Resident

        self.genome, self.fitness_fn = genome, fitness_fn
        self.resident = Resident(genome, device=device)
        self.num_layers = self.resident.num_layers

    def map(self, jobs: list[Job]) -> Iterator[Outcome]:
        for job in jobs:
            yield run_job(self.resident, self.genome, self.fitness_fn, job)

    def close(self) -> None:
        self.resident = None


class Worker:
    """One Ray actor: its own sources and resident model, built once here (Ray wraps this class)."""

    def __init__(self, genome_yaml: str, fitness_fn: FitnessFn, device: str | None, warm: bool = True) -> None:
        from rp_eval.evolve.inmemory import Resident

        self.genome, self.fitness_fn = parse_genome(genome_yaml), fitness_fn
        self.resident = Resident(self.genome, device=device, warm=warm)

    def evaluate(self, job: Job) -> Outcome:
        return run_job(self.resident, self.genome, self.fitness_fn, job)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if app_settings.config().device != "cpu" else 0


def _worker_main(conn, index: int, genome_yaml: str, fitness: bytes, gpu: int | None, threads: int, env: dict):
    """A `LocalPool` worker process: its GPU chosen before CUDA starts, its sources loaded once, then jobs from
    the pipe until the pipe closes or says None."""
    os.environ.update(env)
    # inductor (the compiled decode step, rp_eval/chat/fused.py) may pick a kernel's configuration by timing it
    # on first use, and two processes can time it differently: then the same candidate scores differently on
    # two workers. Its deterministic mode picks without timing where numerics depend on it.
    os.environ.setdefault("TORCHINDUCTOR_DETERMINISTIC", "1")
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)  # "cuda" is this worker's own GPU from here on
    import torch

    torch.set_num_threads(threads)
    try:
        worker = Worker(genome_yaml, pickle.loads(fitness), None if gpu is not None else "cpu", warm=False)
        conn.send(("loaded", None))
        if conn.recv() != "warm":  # the driver's turn for this worker's compiles (LocalPool.__init__ says why)
            return
        worker.resident.warm_up()
    except (EOFError, KeyboardInterrupt):
        return
    except BaseException as err:  # noqa: BLE001 - the driver shows it; a traceback here would go nowhere
        conn.send(("failed", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        position, job, sent = message
        taken = time.time()
        try:
            outcome = worker.evaluate(job)
        except Exception as err:  # noqa: BLE001 - not a failed candidate (those are outcomes): the run stops
            conn.send(("error", position, f"{type(err).__name__}: {err}", time.time()))
            continue
        outcome.stages["transfer"] = max(0.0, taken - sent)  # the way back is added by the driver
        outcome.worker = index
        conn.send(("outcome", position, outcome, time.time()))


class LocalPool:
    """Worker processes on this machine (spawned, so each starts CUDA afresh): one per GPU, each on its own GPU,
    or `workers` processes sharing the CPU cores. Jobs go to whichever worker is free; outcomes come back in
    the order asked."""

    target = staticmethod(_worker_main)  # what each worker process runs

    def __init__(self, genome: Genome, fitness_fn: FitnessFn, workers: int = 0) -> None:
        from rp_eval.evolve.inmemory import check_genome

        self.num_layers = check_genome(genome)  # configs only: refuse a bad genome before starting workers
        gpus = _gpu_count()
        count = workers or max(gpus, 1)
        if gpus and count > gpus:
            raise PoolError(f"{count} worker processes asked for, but this machine has {gpus} GPUs (one per GPU)")
        try:
            fitness = pickle.dumps(fitness_fn)
        except (pickle.PicklingError, AttributeError, TypeError) as err:
            raise PoolError(
                f"the fitness function can not be sent to worker processes ({err}): give a module-level "
                "function or a functools.partial of one"
            ) from None
        home = str(app_settings.home().resolve())  # an absolute workspace, so workers find the same store
        env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)} | {"RP_EVAL_HOME": home}
        threads = max(1, (os.cpu_count() or 1) // count)
        context = multiprocessing.get_context("spawn")
        self.conns, self.processes, self.busy = [], [], []
        try:
            for i in range(count):
                parent, child = context.Pipe()
                args = (child, i, genome.to_yaml(), fitness, i if gpus else None, threads, env)
                process = context.Process(target=self.target, args=args, name=f"rp_eval-evolve-{i}", daemon=True)
                process.start()
                child.close()
                self.conns.append(parent)
                self.processes.append(process)
            for i in range(count):  # every worker loads its sources at the same time
                self._expect(i, "loaded", "could not load the sources")
            # then worker 0 compiles and captures alone, and the others after it, from the compile caches it
            # filled (this machine's, shared by its processes). Compiled on their own, two processes can choose
            # kernels differently (inductor times some choices): on an H200, two processes with empty caches
            # gave other replies to 55 of 64 items of the same candidate, and two workers that compiled side by
            # side scored the same candidate differently (benchmarks/evolve_identity.py, benchmarks/README.md).
            for group in ([0], list(range(1, count))):
                for i in group:
                    self._send(i, "warm")
                for i in group:
                    self._expect(i, "ready", "could not compile its fast path")
        except BaseException:
            self.close()
            raise
        self.busy = [0.0] * count  # seconds each worker spent on jobs (for the benchmark's idle share)
        self.use = count  # how many of the workers `map` gives jobs to (the benchmark compares 1 and all)

    def _expect(self, i: int, status: str, failed: str) -> None:
        got, detail = self._receive(i)
        if got != status:
            raise PoolError(f"worker process {i} {failed}: {detail}")

    def _receive(self, i: int):
        try:
            return self.conns[i].recv()
        except (EOFError, OSError):
            raise self._ended(i) from None

    def _send(self, i: int, message) -> None:
        try:
            self.conns[i].send(message)
        except OSError:
            raise self._ended(i) from None

    def _ended(self, i: int) -> PoolError:
        self.processes[i].join(5)
        code = self.processes[i].exitcode
        return PoolError(
            f"worker process {i} ended (exit code {code}; out of memory, or killed?): the run can be resumed"
        )

    def map(self, jobs: list[Job]) -> Iterator[Outcome]:
        start, waiting, done = time.time(), list(enumerate(jobs)), {}
        free, running = list(range(min(self.use, len(self.conns)))), {}  # worker -> sent at
        following = 0

        def give() -> None:
            while free and waiting:
                w, (position, job) = free.pop(0), waiting.pop(0)
                running[w] = time.time()
                self._send(w, (position, job, running[w]))

        try:
            while following < len(jobs):
                give()
                for conn in wait_for([self.conns[w] for w in running]):
                    w = self.conns.index(conn)
                    kind, position, outcome, replied = self._receive(w)
                    back, sent = time.time(), running.pop(w)
                    self.busy[w] += back - sent
                    free.append(w)
                    if kind == "error":
                        raise PoolError(f"worker process {w} failed on a candidate: {outcome}")
                    outcome.stages["transfer"] = outcome.stages.get("transfer", 0.0) + max(0.0, back - replied)
                    outcome.stages["queued"] = sent - start
                    done[position] = outcome
                give()  # the freed workers start their next job before the caller stores this one
                while following in done:  # in the order asked
                    yield done.pop(following)
                    following += 1
        finally:
            for w in running:  # the caller stopped early: let the jobs in flight finish, so none is read later
                self._receive(w)

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError, ValueError):  # a worker that is gone already
                conn.send(None)
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
        for conn in self.conns:
            conn.close()
        self.conns, self.processes = [], []


def _import_ray():
    try:
        import ray
    except ImportError:
        raise PoolError(
            "the Ray pool needs Ray, which is not installed: pip install 'rp_eval[ray]' (or pip install 'ray>=2.9,<3')"
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """Ray keeps retrying a HOST:PORT where no cluster listens for minutes; a plain TCP connect says so at once."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as err:
        raise PoolError(
            f"no Ray cluster at '{address}' ({err}): give the head node's HOST:PORT (`ray start --head` prints it)"
        ) from None


class RayPool:
    """Candidates spread over Ray actors; results come back in the order they were asked for."""

    def __init__(self, genome: Genome, fitness_fn: FitnessFn, pool: PoolSettings, device: str | None = None) -> None:
        from rp_eval.evolve.inmemory import check_genome

        ray = _import_ray()
        self.num_layers = check_genome(genome)  # configs only: refuse a bad genome before starting actors
        self._ray, self._started = ray, False
        if not ray.is_initialized():
            try:
                if pool.address:
                    _check_reachable(pool.address)
                    ray.init(address=pool.address)
                else:
                    ray.init(address="local", num_cpus=max(os.cpu_count() or 1, pool.actors), include_dashboard=False)
            except ConnectionError as err:
                hint = "; a cluster with token authentication also needs RAY_AUTH_MODE=token (and its token) here"
                raise PoolError(f"no Ray cluster at '{pool.address}': {err}{hint}") from None
            self._started = True
        self.actors = []
        try:
            self._start_actors(genome, fitness_fn, pool, device)
        except BaseException:
            self.close()  # and the Ray instance too, if this pool started it
            raise

    def _start_actors(self, genome: Genome, fitness_fn: FitnessFn, pool: PoolSettings, device: str | None) -> None:
        from ray.util import ActorPool

        ray = self._ray
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        count = pool.actors or max(gpus, 1)
        if gpus and count > gpus:
            raise PoolError(f"{count} actors asked for, but the Ray cluster has {gpus} GPUs (one actor per GPU)")
        need = {"num_gpus": 1} if gpus else {"num_cpus": max(1, cpus // count)}
        home = str(app_settings.home().resolve())  # an absolute workspace, so actors find the same store
        env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)} | {"RP_EVAL_HOME": home}
        actor = ray.remote(Worker).options(**need, runtime_env={"env_vars": env})
        self.actors = [actor.remote(genome.to_yaml(), fitness_fn, device) for _ in range(count)]
        self.pool = ActorPool(self.actors)

    def map(self, jobs: list[Job]) -> Iterator[Outcome]:
        try:
            yield from self.pool.map(lambda actor, job: actor.evaluate.remote(job), jobs)
        except self._ray.exceptions.RayActorError as err:  # its constructor failed, or its process died
            cause = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip().splitlines()[-1]  # the traceback's last line
            raise PoolError(
                f"a Ray actor failed (the run can be resumed; its log has the traceback): {cause}"
            ) from None

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a)
        self.actors = []
        if self._started:
            self._ray.shutdown()


def make_evaluator(
    genome: Genome, fitness_fn: FitnessFn, pool: PoolSettings | None = None, device: str | None = None
) -> Evaluator:
    """Ray where asked for; worker processes where asked for, or one per GPU on a machine with several (unless
    `device` names one); else this process."""
    pool = pool or PoolSettings()
    if pool.wanted:
        return RayPool(genome, fitness_fn, pool, device)
    if pool.workers or (device is None and _gpu_count() > 1):
        return LocalPool(genome, fitness_fn, pool.workers)
    return InProcess(genome, fitness_fn, device)
