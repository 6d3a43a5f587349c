"""Where candidates are evaluated: in this process (the default), or through a Ray actor pool.

An `Evaluator` takes one generation's candidates at once and gives their outcomes back in the order asked, so
a search is the same whatever evaluates it: same candidates, same fitness, same stored rows in the same order.
`InProcess` holds one `Resident` (the sources and the model the candidates are written into). `RayPool` holds
one per actor: one actor per GPU (`num_gpus=1` each), or on a machine without GPUs a chosen number of CPU
actors; each actor loads its sources once, in its constructor, and only genotypes and outcomes travel.
Ray is imported only when a pool is asked for; the scheduling is Ray's own `ray.util.ActorPool`.
"""

from __future__ import annotations

import math
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
    """`address`: "" (start a local Ray instance), "auto" or HOST:PORT (join a running cluster).
    `actors`: how many evaluators (0: one per GPU of the cluster, or one on a cluster without GPUs)."""

    address: str = ""
    actors: int = Field(0, ge=0)

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
    try:
        resident.build(decoded, seed=job.seed)
        t1 = time.perf_counter()
        fit, metrics = fitness_fn(resident, job.split, job.limit, job.data_seed)
        t2 = time.perf_counter()
    except (RuntimeError, ValueError) as err:
        return Outcome(None, error=str(err)[:500])
    if fit is None or not math.isfinite(fit):
        return Outcome(None, build_seconds=t1 - t0, error="the fitness is not a number")
    return Outcome(float(fit), dict(metrics), t1 - t0, t2 - t1)


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

    def __init__(self, genome_yaml: str, fitness_fn: FitnessFn, device: str | None) -> None:
        from rp_eval.evolve.inmemory import Resident

        self.genome, self.fitness_fn = parse_genome(genome_yaml), fitness_fn
        self.resident = Resident(self.genome, device=device)

    def evaluate(self, job: Job) -> Outcome:
        return run_job(self.resident, self.genome, self.fitness_fn, job)


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
    if pool is not None and pool.wanted:
        return RayPool(genome, fitness_fn, pool, device)
    return InProcess(genome, fitness_fn, device)
