"""The CMA-ES search (the `cma` package) over a genome, scored by the role-play fitness on the `dev` split.

A generator of `EvolveProgress`, consumed by the CLI and the Evolve tab. Nothing is lost: every candidate is
stored as it finishes; after each generation the optimiser (the pickled `cma` object and the numpy RNG state it
samples from) is checkpointed atomically; a resumed run reuses the candidates already stored for the
unfinished generation and continues exactly as an uninterrupted run of the same seed. The `test` split is
scored at the end for the best candidates only, and stored apart, so the search never sees it.
Candidates are evaluated by an `Evaluator` (rp_eval.evolve.pool): in this process, or through a Ray actor pool;
each generation is asked for at once and its outcomes taken in order, so both give the same run.
"""

from __future__ import annotations

import math
import pickle
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from rp_eval import processes
from rp_eval import settings as app_settings
from rp_eval.errors import RpEvalError
from rp_eval.evolve import audit
from rp_eval.evolve.genome import Genome, decode, parse_genome, recipe_yaml
from rp_eval.evolve.pool import Evaluator, FitnessFn, Job, Outcome, PoolSettings, make_evaluator
from rp_eval.store import evolve as db
from rp_eval.store import get_store

FAILED_LOSS = 1.0  # CMA-ES minimises -fitness (in [-1, 0]); a failed candidate counts as worse than any


class SearchError(RpEvalError):
    """A search that can not start or resume, with the reason."""


class SearchSettings(BaseModel, frozen=True, extra="forbid"):
    population: int = Field(8, ge=2)
    sigma0: float = Field(0.2, gt=0)
    budget: int = Field(64, ge=0)  # candidates; whole generations are run
    max_seconds: float = Field(0, ge=0)  # wall-time budget of this session; 0: none
    seed: int = 0
    dev_limit: int = Field(32, ge=1)  # dev items per candidate
    dev_seed: int = 0
    max_new_tokens: int = Field(64, ge=1)
    test_limit: int | None = None  # test items for the best candidates (None: the whole split)
    test_top: int = Field(1, ge=0)  # how many of the best candidates get a test score
    weights: str | None = None  # the fitness's weights (a YAML path or workspace name); None: the defaults
    judge_model: str | None = None  # a registered model as the `judge` metric (weight it in `weights`)
    task: str | None = None  # the task's items (a `prompts/eval` JSONL file or folder); None: the project's own


@dataclass
class EvolveProgress:
    run: str
    generation: int
    evaluated: int
    budget: int
    best: float | None
    message: str
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (generation, best, mean)
    done: bool = False
    meta: dict = field(default_factory=dict)  # the fitness's meta-evaluation accuracy (rp_eval.evolve.audit)


def role_play_fitness(
    resident,
    split: str,
    limit: int | None,
    seed: int,
    max_new_tokens: int,
    weights: str | None = None,
    judge_model: str | None = None,
    task: str | None = None,
) -> tuple[float, dict]:
    """The evaluation's combined score (and the mean of every metric) of the resident model on a split of the
    task (`task`: a JSONL file or folder in the `prompts/eval` format; None: the project's own)."""
    from rp_eval.chat.generate import GenerationSettings
    from rp_eval.evaluate.fitness import fitness_rows
    from rp_eval.evaluate.score import load_weights

    gen = GenerationSettings(max_new_tokens=max_new_tokens, temperature=0.0)
    judge = _resident_judge(judge_model) if judge_model else None
    rows = fitness_rows(
        resident.model, resident.tokenizer, resident.format, split=split, limit=limit, seed=seed, generation=gen,
        weights=load_weights(weights), judge=judge, seconds=getattr(resident, "seconds", None),
        batch_size=getattr(resident, "batch_rows", 32), task=_task(task),
    )  # fmt: skip
    if not rows:
        return float("nan"), {}
    metrics = {k: float(np.mean([r.metrics[k] for r in rows if k in r.metrics])) for k in rows[0].metrics}
    metrics["capped"] = float(np.mean([r.finish_reason == "length" for r in rows]))
    return float(np.mean([r.combined for r in rows])), metrics


@lru_cache(maxsize=1)
def _resident_judge(name: str):
    """The judge model of this process (a Ray actor has its own), loaded once beside the resident candidate."""
    from rp_eval.evaluate.judge import load_judge

    return load_judge(name)


@lru_cache(maxsize=4)
def _task(source: str | None):
    """The fitness's task, read once per process (None: the project's own task)."""
    from rp_eval.evaluate.task import load_task

    return load_task(source)


def _check_fitness(search: SearchSettings) -> None:
    """A task, weights and judge that can not be used are refused before the run is created (a bad task file
    with its file and line)."""
    from rp_eval.evaluate.score import load_weights
    from rp_eval.evaluate.task import load_task

    task = load_task(search.task)
    if not task.select("dev"):
        raise SearchError(key="err_task_no_dev", task=search.task or "prompts/eval/items")
    load_weights(search.weights)
    if search.judge_model:  # registered, and its tokenizer has single-token grades
        _resident_judge(search.judge_model)


def checkpoint_path(run: str) -> Path:
    return app_settings.home() / "evolve" / run / "checkpoint.pkl"


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(state))
    tmp.replace(path)


def _load_checkpoint(path: Path, genome: Genome, search: SearchSettings) -> dict:
    state = pickle.loads(path.read_bytes())
    if state["genome"] != genome.digest():
        raise SearchError(key="err_search_other_genome", path=path, theirs=state["genome"], ours=genome.digest())
    # compared with defaults filled in, so a checkpoint made before a setting existed still resumes
    if SearchSettings(**state["settings"]).model_dump(exclude={"max_seconds"}) != search.model_dump(
        exclude={"max_seconds"}
    ):
        raise SearchError(key="err_search_other_settings", path=path)
    return state


def _history(rows) -> list[tuple[int, float, float]]:
    out, best = [], -math.inf
    for g in sorted({r.generation for r in rows}):
        ok = [r.fitness for r in rows if r.generation == g and r.status == "ok"]
        if ok:
            best = max(best, *ok)
            out.append((g, best, float(np.mean(ok))))
    return out


def stored_settings(row, **changes) -> SearchSettings:
    """A run's search settings as stored (without the owner kept beside them), with `changes`."""
    return SearchSettings(**{**{k: v for k, v in (row.settings or {}).items() if k != "owner"}, **changes})


INTERRUPTED = "interrupted: the process running it ended; resume to continue from the last generation"


def mark_interrupted() -> list[str]:
    """Runs left "running" by a process that is gone (killed, crashed) are shown as stopped, resumable."""
    return db.stop_running(get_store(), processes.gone, INTERRUPTED)


def evolve(
    genome: Genome | None,
    search: SearchSettings,
    run: str,
    resume: bool = False,
    stop: threading.Event | None = None,
    fitness_fn: FitnessFn | None = None,
    device: str | None = None,
    pool: PoolSettings | None = None,
    evaluator: Evaluator | None = None,
) -> Iterator[EvolveProgress]:
    """`pool`: where candidates are evaluated (rp_eval.evolve.pool.make_evaluator: in this process, worker
    processes, one per GPU, or a Ray pool); the results are the same. `evaluator`: one made by the caller for
    this genome and fitness (kept open afterwards, so several runs can share its loaded sources)."""
    import cma

    store, stop = get_store(), stop or threading.Event()
    mark_interrupted()
    if search.budget == 0:
        raise SearchError(key="err_search_no_budget")
    row = db.get_run(store, run)
    if resume:
        if row is None:
            raise SearchError(key="err_search_no_run_to_resume", run=run)
        stored = parse_genome(row.genome)
        if genome is not None and genome.digest() != stored.digest():
            raise SearchError(key="err_search_resume_genome", run=run, genome=stored.name)
        genome = stored
    elif row is not None:
        raise SearchError(key="err_search_run_exists", run=run)
    if fitness_fn is None:
        _check_fitness(search)
        fitness_fn = partial(  # a partial, not a lambda: worker processes receive it pickled
            role_play_fitness, max_new_tokens=search.max_new_tokens, weights=search.weights,
            judge_model=search.judge_model, task=search.task,
        )  # fmt: skip
    path = checkpoint_path(run)
    state = _load_checkpoint(path, genome, search) if resume and path.exists() else None
    # measured once per run, with the fitness's own weights and judge; kept once the run exists
    meta = (audit.load_meta(path.parent) if resume else {}) or audit.measure_meta(search.weights, search.judge_model)
    yield EvolveProgress(run, 0, 0, search.budget, None, f"loading the source models; {audit.describe_meta(meta)}",
                         meta=meta)  # fmt: skip
    owned = evaluator is None
    evaluator = evaluator or make_evaluator(genome, fitness_fn, pool, device)  # closed in the `finally` below
    num_layers = evaluator.num_layers
    dims = genome.x0(num_layers).size
    if state is not None:
        es, rng_state, generation = state["es"], state["rng"], state["generation"]
    else:
        opts = {"popsize": search.population, "seed": search.seed + 1, "verbose": -9, "CMA_diagonal": dims > 200}
        es = cma.CMAEvolutionStrategy(genome.x0(num_layers), search.sigma0, opts)
        rng_state, generation = np.random.get_state(), 0
        if row is None:
            row = db.create_run(store, run, genome.to_yaml(), search.model_dump(), str(path))
    if "error" not in meta:
        audit.save_meta(path.parent, meta)
    stamped = {**(db.get_run(store, run).settings or {}), "owner": processes.owner()}
    db.update_run(store, run, status="running", message="", settings=stamped)
    start = time.perf_counter()
    try:
        while True:
            rows = db.candidates(store, row.id)
            evaluated = len(rows)
            if evaluated >= search.budget:
                break
            if stop.is_set() or (search.max_seconds and time.perf_counter() - start > search.max_seconds):
                db.update_run(store, run, status="stopped", message="stopped; resume to continue")
                yield EvolveProgress(run, generation, evaluated, search.budget, _best(rows), "stopped", _history(rows))
                return
            np.random.set_state(rng_state)  # cma samples from numpy's global RNG; keep it ours alone
            xs = es.ask()
            rng_state = np.random.get_state()
            done = {r.index: r for r in rows if r.generation == generation}
            todo = [i for i in range(len(xs)) if i not in done]  # a resumed generation skips what is stored
            jobs = [Job(list(map(float, xs[i])), _seed(search, generation, i), "dev", search.dev_limit,
                        search.dev_seed) for i in todo]  # fmt: skip
            for i, outcome in zip(todo, evaluator.map(jobs), strict=True):
                done[i] = _store_candidate(store, row.id, genome, num_layers, generation, i, xs[i], outcome)
                rows.append(done[i])  # not read back: rereading every row per candidate grew with the run
                yield EvolveProgress(
                    run, generation, len(rows), search.budget, _best(rows),
                    f"generation {generation + 1} candidate {i}: {_describe(done[i])}", _history(rows),
                )  # fmt: skip
                if stop.is_set():
                    break
            if len(done) < len(xs):
                continue  # stopped inside a generation: the check above ends the run, resume finishes it
            losses = [-done[i].fitness if done[i].status == "ok" else FAILED_LOSS for i in range(len(xs))]
            es.tell(xs, losses)
            generation += 1
            state = {"genome": genome.digest(), "settings": search.model_dump(exclude={"max_seconds"})}
            _save_checkpoint(path, {**state, "es": es, "rng": rng_state, "generation": generation})
            db.update_run(store, run, generations=generation, best_fitness=_best(rows))
        yield from _score_test(store, row.id, run, evaluator, search)
        rows = db.candidates(store, row.id)
        db.update_run(store, run, status="done", best_fitness=_best(rows), message="")
        done = f"done; {audit.describe_meta(meta)}; {_describe_best(rows)}"
        yield EvolveProgress(run, generation, len(rows), search.budget, _best(rows), done, _history(rows), True, meta)
    except BaseException as err:
        db.update_run(store, run, status="failed" if isinstance(err, Exception) else "stopped", message=str(err))
        raise
    finally:
        if owned:
            evaluator.close()


def _describe_best(rows) -> str:
    best = audit.best_table(rows, top=1)
    if best.empty:
        return "no successful candidate"
    b = best.iloc[0]
    test = "not scored" if pd.isna(b.test_fitness) else f"{b.test_fitness:.4f}"
    flag = f" (flagged: {b.flag})" if b.flag else ""
    return f"best dev fitness {b.dev_fitness:.4f}, test {test}{flag}"


def _best(rows) -> float | None:
    ok = [r.fitness for r in rows if r.status == "ok"]
    return max(ok) if ok else None


def _describe(c) -> str:
    return f"fitness {c.fitness:.4f}" if c.status == "ok" else f"failed ({c.error})"


def _seed(search: SearchSettings, generation: int, index: int) -> int:
    return search.seed * 100003 + generation * 1009 + index


def _store_candidate(store, run_id, genome, num_layers, generation, index, x, outcome: Outcome):
    values = dict(
        generation=generation, index=index, genotype=[float(v) for v in x],
        recipe=recipe_yaml(decode(genome, num_layers, x)), build_seconds=outcome.build_seconds,
    )  # fmt: skip
    if outcome.fitness is None:
        return db.add_candidate(store, run_id, **values, status="failed", error=outcome.error)
    return db.add_candidate(
        store, run_id, **values, status="ok", fitness=outcome.fitness, metrics=outcome.metrics,
        eval_seconds=outcome.eval_seconds,
    )  # fmt: skip


def _score_test(store, run_id, run, evaluator: Evaluator, search: SearchSettings) -> Iterator[EvolveProgress]:
    ok = sorted((r for r in db.candidates(store, run_id) if r.status == "ok"), key=lambda r: -r.fitness)
    best = [r for r in ok[: search.test_top] if r.test_fitness is None]
    if not best:
        return
    yield EvolveProgress(run, -1, 0, search.budget, ok[0].fitness, f"scoring {len(best)} best on the test split")
    jobs = [Job(r.genotype, _seed(search, r.generation, r.index), "test", search.test_limit, search.dev_seed)
            for r in best]  # fmt: skip
    for r, outcome in zip(best, evaluator.map(jobs), strict=True):
        db.set_test_fitness(store, r.id, outcome.fitness)


def best_candidate(run: str):
    store = get_store()
    row = db.get_run(store, run)
    if row is None:
        raise SearchError(key="err_search_no_run", run=run)
    ok = [r for r in db.candidates(store, row.id) if r.status == "ok"]
    if not ok:
        raise SearchError(key="err_search_no_candidate", run=run)
    return max(ok, key=lambda r: r.fitness)


def recipes_folder() -> Path:
    """Where exported recipes go unless the user names a folder: the workspace, never the source checkout."""
    return app_settings.home() / "merges"


def recipe_path(name: str, folder: str | Path | None = None) -> Path:
    from rp_eval.evolve.genome import NAME

    if not NAME.fullmatch(name or ""):
        raise SearchError(key="err_bad_name", name=name)
    return Path(folder or recipes_folder()).expanduser() / f"{name}.yaml"


def save_best_recipe(run: str, name: str, folder: str | Path | None = None) -> Path:
    """The best candidate's recipe, checked, written atomically to FOLDER/NAME.yaml (default: the workspace)."""
    from rp_eval.merge import recipe as recipes

    best = best_candidate(run)
    recipes.validate(best.recipe, check_shapes=False)
    path = recipe_path(name, folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(best.recipe, encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        raise SearchError(key="err_search_write", path=path, detail=err.strerror or err) from err
    return path


def export_best(run: str, name: str, folder: str | Path | None = None) -> Iterator:
    """Write the best candidate's recipe to FOLDER/NAME.yaml (default: `recipes_folder()`, in the workspace) and
    run the full merge with mergekit (registers it).

    DARE's mask comes from mergekit's own seeded RNG there, so a dare_ties export is a fresh draw of the same
    recipe, not the candidate's exact weights."""
    from rp_eval.merge.run import merge

    best = best_candidate(run)
    save_best_recipe(run, name, folder)
    yield from merge(best.recipe, name)
