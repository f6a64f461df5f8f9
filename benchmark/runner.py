"""``erasebench run``: plan (validate everything, write nothing), then generate, score and write results.

Work is sharded ``item_index % world_size == rank`` under torchrun / accelerate launch (via accelerate's
``PartialState``), each rank on its own device (``device_for_rank``): a rank generates its videos, then
scores them with every metric, decoding each video once; after a barrier the main process gathers the
scores from the score files (computing any still missing) and writes the results.

Every key comes from ``benchmark/identity.py`` without loading the pipeline, so a rerun whose videos are
all cached and trusted loads no model (``Runner.all_videos``), one whose results are up to date writes
nothing (``ResultsWriter.up_to_date``), and ``dry_run`` says what a run would make without writing anything.
The runner loads, fits and generates; ``Scorer`` (benchmark/scoring.py) scores and aggregates, and
``ResultsWriter`` (benchmark/run_writer.py) writes the results files.

Runs repair what they find broken (docs/architecture.md): every cached video is checked against its sidecar
(size, sha256) before it is trusted, a broken one is moved aside and regenerated, a score that does not match
its video or metric is recomputed, and results.json is written only over videos that pass. A video (and a
fit) is made under its filelock, so two runs on one output folder never make the same one at once; temp
files of killed runs are removed. A full disk stops the run with one line (exit 2); a rerun resumes.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from . import __version__
from .erasers import ERASERS, Eraser, RunContext
from .errors import ArtifactError, ErasebenchError
from .metrics.base import METRICS, Metric, MetricContext
from .models.base import ModelFamily, check_generation
from .models.loading import (
    ModelSource, check_memory_options, check_scheduler, detect_family, load_pipeline, pipeline_spec, resolve_model,
    scheduler_record, set_scheduler,
)
from .plan_checks import check_plan
from .run_writer import ResultsWriter
from .scoring import Scorer
from .specs import GenerationSettings, PluginSpec, PromptRecord, RunSpec, parse_generation, stable_hash
from filelock import Timeout

from . import identity
from .identity import RunKeys, VideoKey
from .store import ArtifactStore, atomic_write_json, file_sha256
from .suites import Suite, load_concept, load_suite
from .video import to_uint8, write_video


@dataclass
class WorkItem:
    index: int
    record: PromptRecord
    sample: int
    seed: int


@dataclass
class ErasureGroup:
    """The prompts generated with one eraser instance: in ``per-category`` mode one group per erased concept
    (its category's prompts) plus one erasing every concept for the other prompts; in ``joint`` mode one group."""

    eraser: Eraser
    items: list[WorkItem] = field(default_factory=list)


@dataclass
class RunPlan:
    spec: RunSpec
    suite: Suite
    records: list[PromptRecord]
    eraser: Eraser  # every concept at once: the run's method label and settings
    metrics: list[Metric]
    source: ModelSource
    family: ModelFamily
    generation: GenerationSettings
    root: Path
    items: list[WorkItem] = field(default_factory=list)
    groups: list[ErasureGroup] = field(default_factory=list)
    erase_mode: str = "joint"
    # one line per metric this run does not compute, saying why and how to turn it on
    notes: list[str] = field(default_factory=list)

    def group_of(self, item: WorkItem) -> ErasureGroup:
        return self._group_index[item.index]

    def __post_init__(self) -> None:
        self._group_index = {item.index: group for group in self.groups for item in group.items}

    @property
    def run_name(self) -> str:
        return identity.run_name(self.spec, self.suite.name, self.eraser.name, self.source.slug())

    @property
    def run_dir(self) -> Path:
        return self.root / "runs" / self.run_name


def check_writable(root: Path) -> None:
    """The output root must be (or be creatable as) a writable folder; checked before anything is written.

    The nearest existing ancestor gets a probe file that is removed at once (``os.access`` says yes to root
    even on read-only mounts).
    """
    import tempfile

    probe = root
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ErasebenchError(f"output folder {str(root)!r} is not usable: {str(probe)!r} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise ErasebenchError(f"output folder {str(root)!r} is not writable ({exc.strerror} in {str(probe)!r})") from None


def build_metrics(spec: RunSpec, suite: Suite, context: MetricContext) -> tuple[list[Metric], list[str]]:
    """The run's metrics and one note per metric not run.

    Named metrics (``--metrics``) must build or the run stops. The suite's default metrics that cannot be
    built for want of something outside the run (weights, reference photos: an ``ErasebenchError`` when given
    no arguments) are skipped with a note; the suite's paper metrics (a service or another environment) run
    only when named, and each one not named gets a note saying how to turn it on.
    """
    suite_args = {m.name: m.args for m in (*suite.spec.paper_metrics, *suite.spec.metrics)}
    metrics: list[Metric] = []
    notes: list[str] = []
    for plugin in spec.metrics or suite.spec.metrics:
        metric_cls = METRICS.get(plugin.name)
        args = {**suite_args.get(plugin.name, {}), **plugin.args}
        try:
            metrics.append(metric_cls.from_args(args, context))
        except ErasebenchError as exc:
            if spec.metrics or plugin.args != suite_args.get(plugin.name, {}):
                raise
            notes.append(f"metric {plugin.name!r} not run: {exc}")
    named = {m.name for m in spec.metrics}
    for plugin in suite.spec.paper_metrics:
        if plugin.name not in named:
            metric_cls = METRICS.get(plugin.name)
            needs = getattr(metric_cls, "requires", "") or metric_cls.describe()
            notes.append(f"paper metric {plugin.name!r} not run: it needs {needs}; add --metrics {plugin.name}")
    return metrics, notes


def erasure_groups(eraser: Eraser, args: dict, items: list[WorkItem], mode: str) -> list[ErasureGroup]:
    """One group per erased concept (``per-category``) plus a joint group (``eraser``, every concept) for
    prompts of no erased concept, or one joint group. Groups with no prompt are dropped."""
    joint = ErasureGroup(eraser)
    concepts = eraser.concepts
    if mode != "per-category" or len(concepts) < 2:
        joint.items = list(items)
        return [joint]
    by_concept = {c.name: ErasureGroup(type(eraser).from_args(args, [c])) for c in concepts}
    for item in items:
        by_concept.get(item.record.target_concept or "", joint).items.append(item)
    return [g for g in (*by_concept.values(), joint) if g.items]


def check_generation_settings(source: ModelSource, family: ModelFamily, generation: GenerationSettings) -> None:
    """``check_generation`` and ``check_scheduler`` (they import diffusers and the pipeline class), done once per
    input: for a model in a local folder, settings that passed are remembered under the erasebench cache by
    everything the checks read (model_index.json and the components' config files, the settings, the
    diffusers and erasebench versions, the checks' own source files), so a rerun imports no diffusers to plan."""
    memo = None
    if source.folder is not None:
        memo = stable_hash({
            "family": family.name,
            "index": (source.folder / "model_index.json").read_text(encoding="utf-8"),
            "configs": identity.component_configs(source.folder),
            "generation": generation.model_dump(mode="json"),
            "diffusers": identity.package_version("diffusers"),
            "erasebench": __version__,
            "checks": [file_sha256(Path(f.__code__.co_filename)) for f in (check_generation, check_scheduler)],
        }, 16)
        if identity.cache_get("checked-generation.json", memo):
            return
    check_generation(family, generation, *pipeline_spec(source))
    check_scheduler(generation.scheduler, generation.num_inference_steps)
    if memo is not None:
        identity.cache_put("checked-generation.json", memo, True)


def plan_run(spec: RunSpec, root: Path) -> RunPlan:
    """Validate every input; raises ErasebenchError before anything is written."""
    check_launch_env(os.environ)
    source = resolve_model(spec.model, spec.model_revision)
    family = detect_family(source)
    suite = load_suite(spec.suite, spec.data_dir, family.name)
    concepts = [load_concept(name, suite.path.parent if suite.path else None) for name in spec.concepts] or suite.concepts()
    eraser_cls = ERASERS.get(spec.eraser.name)
    eraser = eraser_cls.from_args(spec.eraser.args, concepts)
    context = MetricContext(suite=suite.name, concepts=concepts, device=device_for_rank(spec.device), data_dir=spec.data_dir)
    metrics, notes = build_metrics(spec, suite, context)
    eraser.check_family(family)
    generation = suite.spec.generation_for(family.name).merged(parse_generation(spec.generation))
    check_generation_settings(source, family, generation)
    check_memory_options(spec.memory, spec.device)
    if spec.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ErasebenchError("--device cuda: this machine has no usable CUDA GPU (torch.cuda.is_available() is False); use --device cpu")
    check_writable(root)
    records = suite.records[: spec.limit] if spec.limit else list(suite.records)
    samples = spec.samples or suite.spec.samples
    items = []
    for record in records:
        for sample in range(samples):
            items.append(WorkItem(len(items), record, sample, suite.seed_for(record, sample, spec.seed_policy, spec.seed)))
    mode = spec.erase_mode or suite.spec.erase_mode
    groups = erasure_groups(eraser, spec.eraser.args, items, mode)
    return check_plan(RunPlan(spec, suite, records, eraser, metrics, source, family, generation, root, items, groups, mode, notes))


_SET_BY_LAUNCHER = "it is set by torchrun or accelerate launch"


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int, what: str = _SET_BY_LAUNCHER) -> int:
    raw = env.get(name, "")
    try:
        value = int(raw) if raw.strip() else default
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ErasebenchError(f"{name}={raw!r} is not allowed: use an integer >= {minimum} ({what})")
    return value


def world_of(env: Mapping[str, str]) -> tuple[int, int, int]:
    """(rank, local rank, world size) from the variables torchrun and accelerate launch set (1 process: 0, 0, 1);
    a value that is not a whole number in range is one ``ErasebenchError`` line naming the variable."""
    world = _env_int(env, "WORLD_SIZE", 1, 1)
    if world <= 1:
        return 0, 0, 1
    rank = _env_int(env, "RANK", 0, 0)
    local_rank = _env_int(env, "LOCAL_RANK", 0, 0)
    local_world = local_world_size(env, world)
    if rank >= world:
        raise ErasebenchError(f"RANK={rank} is not allowed with WORLD_SIZE={world}: use 0 to {world - 1}")
    if local_rank >= local_world:
        raise ErasebenchError(f"LOCAL_RANK={local_rank} is not allowed with LOCAL_WORLD_SIZE={local_world}: use 0 to {local_world - 1}")
    return rank, local_rank, world


def local_world_size(env: Mapping[str, str], world: int) -> int:
    """Processes on this node: ``LOCAL_WORLD_SIZE`` (torchrun sets it), else ``world`` (at most ``world``)."""
    local_world = _env_int(env, "LOCAL_WORLD_SIZE", 0, 0) or world
    if local_world > world:
        raise ErasebenchError(f"LOCAL_WORLD_SIZE={local_world} is not allowed with WORLD_SIZE={world}: use 1 to {world}")
    return local_world


def device_for_rank(requested: str, env: Mapping[str, str] | None = None) -> str:
    """The device one process uses: with several processes, ``cuda`` is the process's local rank's GPU
    (``cuda:{LOCAL_RANK}``, accelerate's ``local_process_index``), so every rank has its own; else unchanged."""
    env = os.environ if env is None else env
    _, local_rank, world = world_of(env)
    if world > 1 and requested == "cuda":
        return f"cuda:{local_rank}"
    return requested


def threads_for_process(env: Mapping[str, str] | None = None, cpus: int | None = None) -> int | None:
    """Torch threads per process: ``ERASEBENCH_THREADS`` when set; None (torch's default) when
    ``OMP_NUM_THREADS`` is set (the user's or the launcher's choice: torchrun sets 1 per process when it
    starts several) or for a single process; else the usable cores split evenly over the local processes,
    ``max(1, cpus // LOCAL_WORLD_SIZE)``, so two processes on two cores do not fight over them."""
    env = os.environ if env is None else env
    if env.get("ERASEBENCH_THREADS", "").strip():
        return _env_int(env, "ERASEBENCH_THREADS", 1, 1, "torch threads per process")
    _, _, world = world_of(env)
    if world <= 1 or env.get("OMP_NUM_THREADS"):
        return None
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // local_world_size(env, world))


def set_threads(env: Mapping[str, str] | None = None) -> int | None:
    """Apply ``threads_for_process`` to torch (before the pipeline loads); returns the count set, or None."""
    threads = threads_for_process(env)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return threads


@contextmanager
def fit_threads(world_size: int, env: Mapping[str, str] | None = None) -> Iterator[None]:
    """While the main process fits and the other local processes wait at a barrier, it uses their threads
    too (its own count times ``LOCAL_WORLD_SIZE``, at most the usable cores); restored afterwards."""
    env = os.environ if env is None else env
    if world_size <= 1:
        yield
        return
    import torch

    before = torch.get_num_threads()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local_world = local_world_size(env, world_size)
    torch.set_num_threads(max(before, min(cpus, before * local_world)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: minutes a collective may wait (a rank at the barrier while the main process fits alone: t2vunlearning's
#: training takes hours on a real model; torch's default is 10 to 30 min). ERASEBENCH_DIST_TIMEOUT overrides.
DIST_TIMEOUT_MIN = 12 * 60


def dist_timeout(env: Mapping[str, str]) -> timedelta:
    raw = env.get("ERASEBENCH_DIST_TIMEOUT", "")
    try:
        minutes = float(raw) if raw.strip() else DIST_TIMEOUT_MIN
    except ValueError:
        minutes = -1
    if not (0 < minutes < 1e7):  # also nan and inf
        raise ErasebenchError(f"ERASEBENCH_DIST_TIMEOUT {raw!r} is not allowed: use a positive number of minutes")
    return timedelta(minutes=minutes)


def check_launch_env(env: Mapping[str, str]) -> None:
    """Plan-time checks of the launcher's and erasebench's process variables (one ``ErasebenchError`` line)."""
    _, _, world = world_of(env)
    threads_for_process(env, cpus=1)
    if world > 1:
        dist_timeout(env)


class Distributed:
    """Rank / world size / barrier through accelerate's PartialState when launched with several processes."""

    def __init__(self) -> None:
        self.state = None
        if world_of(os.environ)[2] > 1:
            from accelerate import PartialState

            cpu = os.environ.get("ERASEBENCH_FORCE_CPU", "1") == "1"
            self.state = PartialState(cpu=cpu, timeout=dist_timeout(os.environ))

    @property
    def rank(self) -> int:
        return self.state.process_index if self.state else 0

    @property
    def local_rank(self) -> int:
        return self.state.local_process_index if self.state else 0

    @property
    def world_size(self) -> int:
        return self.state.num_processes if self.state else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str) -> str:
        """This rank's device (``device_for_rank``; accelerate's local process index under a launcher)."""
        if self.state is not None and requested == "cuda":
            return f"cuda:{self.local_rank}"
        return device_for_rank(requested)

    def barrier(self) -> None:
        if self.state:
            self.state.wait_for_everyone()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's picklable ``value`` in rank order, on every rank (tensors in it on the CPU)."""
        if not self.state:
            return [value]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value: Any) -> Any:
        """The main process's picklable ``value``, on every rank."""
        if not self.state:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


ProgressFactory = Callable[[str, int], Any]


def disk_full(exc: BaseException) -> bool:
    """ENOSPC or a full quota, raised as ``OSError`` (Python, PyAV) or as a library's own error that only says
    so in its message (safetensors: ``StorageFull``)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return not isinstance(exc, ErasebenchError) and any(s in str(exc) for s in ("No space left on device", "StorageFull", "Disk quota exceeded"))


class Runner:
    def __init__(self, plan: RunPlan, progress: ProgressFactory | None = None, log: Callable[[str], None] = lambda s: None):
        self.plan = plan
        self.store = ArtifactStore(plan.root)
        self.progress = progress
        self.log = log
        self.dist = Distributed()
        self.device = self.dist.device(plan.spec.device)  # this rank's own GPU under a launcher
        self.pipe = None
        self._keys: RunKeys | None = None
        self.generated = 0
        self.made_elsewhere = 0  # videos another run on the same output folder made while this one waited
        self.gen_seconds = 0.0
        self.repaired: list[str] = []  # one line per broken artifact moved aside or recomputed
        self.check_seconds = 0.0  # time spent checking cached videos against their sidecars
        self.started = time.time()
        self.scorer = Scorer(plan, self.store, progress, self.note_repair)

    # ---- keys (benchmark/identity.py: from files, no pipeline) ------------------------------------
    @property
    def keys(self) -> RunKeys:
        if self._keys is None:
            self._keys = identity.run_keys(self.plan)
        return self._keys

    @property
    def model_files(self) -> dict[str, str]:
        return self.keys.model_files

    @property
    def model_fp(self) -> str:
        return self.keys.model_fp

    @property
    def scheduler(self) -> dict[str, Any]:
        return self.keys.scheduler

    # ---- model and erasers ------------------------------------------------------------------
    def load(self) -> None:
        """Load the pipeline, set the suite's sampler, and fit every group's eraser that needs it. The keys
        computed from files (``identity.run_keys``) must match the loaded pipeline's call settings and scheduler."""
        plan = self.plan
        set_threads()
        self.pipe = load_pipeline(self.keys.folder, plan.spec.dtype, self.device, plan.spec.memory)
        set_scheduler(self.pipe, plan.generation.scheduler)
        loaded = {"call": json.loads(json.dumps(self.call_defaults(), default=str)), "scheduler": scheduler_record(self.pipe)}
        for what, value in loaded.items():
            if value != getattr(self.keys, what):
                raise ArtifactError(
                    f"the {what} settings of the loaded pipeline differ from those read from its files "
                    f"({value!r} != {getattr(self.keys, what)!r}); please report this (benchmark/identity.py)"
                )
        self.set_run_context()
        for group in plan.groups:
            self.fit(group.eraser)

    def set_run_context(self) -> None:
        """Give every eraser of the run what a fit may use (the keys' call settings and scheduler, seed, device)."""
        plan = self.plan
        for eraser in {id(e): e for e in [plan.eraser, *(g.eraser for g in plan.groups)]}.values():
            eraser.run_context = RunContext(
                generation=self.call_settings(),
                seed=plan.spec.seed,
                device=self.device,
                dtype=plan.spec.dtype,
                data_dir=plan.spec.data_dir,
                scheduler=self.scheduler,
                progress=self.progress if self.dist.is_main else None,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
                gather=self.dist.gather,
            )

    def artifact_dir(self, eraser: Eraser) -> Path | None:
        rel = self.keys.artifact_rel(eraser)
        return None if rel is None else self.plan.root / rel

    def fit(self, eraser: Eraser) -> None:
        """Fit once per (model, eraser fingerprint, fit key), under the artifact's lock on the main process.
        The main process fits alone while the others wait, or, for an eraser with ``shared_fit``, every rank
        fits its share of the work and only the main process writes the artifact. ``DONE.json`` lists each
        file's sha256: an artifact that no longer matches is moved aside and fitted again."""
        artifact_dir = self.artifact_dir(eraser)
        if artifact_dir is None:
            return
        done = artifact_dir / "DONE.json"
        shared = eraser.shared_fit and self.dist.world_size > 1
        if not self.dist.is_main:
            if shared and self.dist.broadcast(None):  # the main process is fitting: do this rank's share
                with tempfile.TemporaryDirectory(prefix="erasebench-fit-share-") as scratch:
                    eraser.fit(self.pipe, self.plan.family, Path(scratch))
        else:
            with self.store.lock(artifact_dir.relative_to(self.plan.root).as_posix()):
                if self.plan.spec.overwrite == "always":  # fit again from nothing
                    shutil.rmtree(artifact_dir, ignore_errors=True)
                problem = self.artifact_problem(artifact_dir)
                if problem not in (None, "absent"):
                    moved = self.store.move_aside(artifact_dir)
                    self.note_repair(f"fit artifact {str(artifact_dir)!r} {problem}: moved to {moved.name if moved else '-'}, fitting again")
                if shared:
                    self.dist.broadcast(problem is not None)
                if problem is not None:
                    self.log(f"fitting {eraser.name} ({', '.join(c.name for c in eraser.concepts)}) into {artifact_dir}")
                    start = time.perf_counter()
                    # alone, the main process uses the waiting local ranks' threads too
                    with fit_threads(1 if shared else self.dist.world_size):
                        eraser.fit(self.pipe, self.plan.family, artifact_dir)
                    files = {
                        p.relative_to(artifact_dir).as_posix(): file_sha256(p)
                        for p in sorted(artifact_dir.rglob("*"))
                        if p.is_file() and p.name != "DONE.json" and not p.name.startswith(".")
                    }
                    atomic_write_json(done, {"seconds": time.perf_counter() - start, "eraser": eraser.settings(), "files": files})
        self.dist.barrier()

    @staticmethod
    def artifact_problem(artifact_dir: Path) -> str | None:
        """None when a fit artifact is complete and every file matches ``DONE.json``; "absent" when it was
        never finished; else what is wrong. (A ``DONE.json`` without ``files`` predates the check: trusted.)"""
        try:
            done = json.loads((artifact_dir / "DONE.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return "absent"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return "has an unreadable DONE.json"
        files = done.get("files", {}) if isinstance(done, dict) else None
        if not isinstance(files, dict):
            return "has an unreadable DONE.json"
        for name, sha in files.items():
            path = artifact_dir / name
            if not path.is_file():
                return f"lacks {name}"
            if file_sha256(path) != sha:
                return f"file {name} does not match its sha256 in DONE.json"
        return None

    def note_repair(self, line: str) -> None:
        self.repaired.append(line)
        self.log(line)

    def call_defaults(self) -> dict[str, Any]:
        """The pipeline-call kwargs: the family's defaults (from the loaded pipeline once loaded, else from
        the model's config files) plus the suite's settings."""
        if self.pipe is None:
            return dict(self.keys.call)
        return {**self.plan.family.call_defaults(self.pipe), **self.plan.generation.pipeline_kwargs()}

    def call_settings(self) -> dict[str, Any]:
        """``call_defaults()`` as JSON values (what sidecars, results and the eraser's run context record)."""
        return json.loads(json.dumps(self.call_defaults(), default=str))

    def gen_fp(self) -> str:
        """The generation key of this run's videos (``identity.generation_key``)."""
        return self.keys.gen_key

    def group(self, eraser: Eraser | None = None) -> str:
        """The cache folder of the videos one eraser makes in this run."""
        return self.keys.group(eraser or self.plan.eraser)

    def key(self, item: WorkItem) -> VideoKey:
        return self.keys.key(item)

    # ---- generation --------------------------------------------------------------------------
    def generate_batch(self, eraser: Eraser, items: list[WorkItem]) -> np.ndarray:
        """Call the pipeline once for a batch; one seeded generator per video, so a video depends only on its seed."""
        import torch

        plan = self.plan
        generators = [torch.Generator(device=self.device).manual_seed(item.seed) for item in items]
        records = [i.record for i in items]
        kwargs = {**self.call_defaults(), **eraser.call_kwargs(plan.family, records)}
        eraser.before_batch(self.pipe, plan.family, records)
        with torch.inference_mode():
            output = self.pipe(prompt=[i.record.prompt for i in items], generator=generators, output_type="np", **kwargs)
        return plan.family.frames(output)

    def trusted(self, key: VideoKey) -> bool:
        """True when the cached video matches its sidecar (size and sha256). A broken one is moved aside
        (one line) unless another run holds its lock (it is writing it now)."""
        rel = key.relpath()
        meta, problem = self.store.check_video(rel)
        if meta is not None or problem is None:
            return meta is not None
        lock = self.store.lock(rel)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        try:
            return self.repair_locked(rel)
        finally:
            lock.release()

    def repair_locked(self, rel: str) -> bool:
        """With ``rel``'s lock held: True when it is fine, else move it aside if broken and return False."""
        meta, problem = self.store.check_video(rel)
        if problem is not None:
            moved = self.store.quarantine(rel)
            self.note_repair(f"video {rel!r} {problem}: moved aside ({', '.join(p.name for p in moved)}), regenerating")
        return meta is not None

    def generate(self) -> None:
        plan = self.plan
        mine = [item for item in plan.items if item.index % self.dist.world_size == self.dist.rank]
        t0 = time.perf_counter()
        if plan.spec.overwrite == "always":
            todo = mine
        else:
            todo = [item for item in mine if not self.trusted(self.key(item))]
        self.check_seconds += time.perf_counter() - t0
        if todo and plan.spec.overwrite == "only-cache":
            raise ErasebenchError(
                f"--overwrite only-cache: {len(todo)} of {len(mine)} videos are not in the cache under {str(plan.root)!r}"
            )
        share = f"rank {self.dist.rank}'s share of {len(plan.items)} over {self.dist.world_size} ranks; " if self.dist.world_size > 1 else ""
        self.log(
            f"generation: {len(mine) - len(todo)} of {len(mine)} videos cached, {len(todo)} to generate "
            f"({share}sha256 checks: {self.check_seconds:.3f} s)"
        )
        if not todo:
            return
        bar = self.progress("generating", len(todo)) if self.progress else None
        for group in plan.groups:
            pending = [item for item in todo if plan.group_of(item) is group]
            if not pending:
                continue
            group.eraser.apply(self.pipe, plan.family, self.artifact_dir(group.eraser))
            try:
                self.generate_group(group.eraser, pending, bar)
            finally:
                group.eraser.remove(self.pipe, plan.family)

    def claim(self, pending: list[WorkItem], size: int) -> tuple[list[WorkItem], list[Any], list[WorkItem]]:
        """Up to ``size`` items whose lock this run now holds and whose video is still to make, their locks,
        and the items left (held by another run now). With nothing free, waits for the first held one."""
        batch, locks, rest = [], [], []
        for position, item in enumerate(pending):
            if len(batch) == size:
                rest.extend(pending[position:])
                break
            rel = self.key(item).relpath()
            lock = self.store.lock(rel)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                rest.append(item)
                continue
            if self.plan.spec.overwrite != "always" and self.repair_locked(rel):
                lock.release()  # another run made it meanwhile
                self.made_elsewhere += 1
                continue
            batch.append(item)
            locks.append(lock)
        if not batch and rest:  # every video left is being made by another run: wait for the first one
            with self.store.lock(self.key(rest[0]).relpath()):
                pass
        return batch, locks, rest

    def generate_group(self, eraser: Eraser, todo: list[WorkItem], bar: Any) -> None:
        """Generate ``todo`` in batches, each video under its lock (``claim``): two runs on one output folder
        share the work and never make one video twice at once."""
        plan = self.plan
        kwargs_for_sidecar = self.call_settings()
        pending = list(todo)
        while pending:
            elsewhere = self.made_elsewhere
            batch, locks, pending = self.claim(pending, plan.spec.batch_size)
            try:
                if batch:
                    self.generate_locked(eraser, batch, kwargs_for_sidecar)
            finally:
                for lock in locks:
                    lock.release()
            if bar and len(batch) + self.made_elsewhere - elsewhere:
                bar(len(batch) + self.made_elsewhere - elsewhere)

    def generate_locked(self, eraser: Eraser, batch: list[WorkItem], kwargs_for_sidecar: dict[str, Any]) -> None:
        """Generate one batch whose locks this run holds; each video is written, then its sidecar (``commit``)."""
        plan = self.plan
        t0 = time.perf_counter()
        frames = self.generate_batch(eraser, batch)
        seconds = (time.perf_counter() - t0) / len(batch)
        self.gen_seconds += seconds * len(batch)
        infos = eraser.batch_info([item.record for item in batch])
        for item, video, info in zip(batch, frames, infos):
            key = self.key(item)
            path = self.store.video_path(key)
            pixels = to_uint8(video)
            write_video(path, pixels, fps=plan.generation.fps, codec=plan.spec.video_codec)
            self.store.commit(
                key,
                {
                    "prompt": item.record.prompt,
                    "prompt_id": item.record.prompt_id,
                    "category": item.record.category,
                    "sample": item.sample,
                    "seed": item.seed,
                    "suite": {"name": plan.suite.name, "version": plan.suite.spec.version},
                    "model": {"ref": plan.source.ref, "fingerprint": self.model_fp, "family": plan.family.name},
                    "eraser": {
                        "name": eraser.name,
                        "fingerprint": eraser.fingerprint(),
                        "concepts": [c.name for c in eraser.concepts],
                    },
                    "generation": {
                        **kwargs_for_sidecar, "fps": plan.generation.fps, "codec": plan.spec.video_codec,
                        "scheduler": self.scheduler,
                    },
                    "eraser_call_kwargs": json.loads(
                        json.dumps(eraser.call_kwargs(plan.family, [item.record]), default=str)
                    ),
                    "eraser_info": json.loads(json.dumps(info, default=str)),
                    "frames": list(pixels.shape),
                    "seconds": seconds,
                    "rank": self.dist.rank,
                    "world_size": self.dist.world_size,
                    "erasebench": __version__,
                },
            )
            self.generated += 1

    # ---- scoring and results -----------------------------------------------------------------
    def mine(self) -> list[WorkItem]:
        """This rank's share of the planned videos: ``index % world_size == rank``."""
        return [item for item in self.plan.items if item.index % self.dist.world_size == self.dist.rank]

    def expected(self, items: list[WorkItem] | None = None) -> list[tuple[WorkItem, VideoKey, dict[str, Any]]]:
        """Every planned video (or ``items``) with its sidecar (a ``VideoSidecar``), each checked for size and sha256."""
        out = []
        missing = []
        for item in self.plan.items if items is None else items:
            key = self.key(item)
            meta, problem = self.store.check_video(key.relpath())
            if meta is None:
                missing.append(f"{key.relpath()} ({problem or 'absent'})")
            else:
                out.append((item, key, meta))
        if missing:
            raise ArtifactError(f"{len(missing)} expected videos are missing or fail their check, first: {missing[0]!r}; rerun to regenerate them")
        return out

    # ---- scoring and results (benchmark/scoring.py, benchmark/run_writer.py) -------------------
    def score(self, expected: list[tuple[WorkItem, VideoKey, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Every metric's row for each of ``expected`` (``Scorer.score``: cached rows read, the rest computed)."""
        return self.scorer.score(expected)

    def writer(self) -> ResultsWriter:
        return ResultsWriter(self.plan, self.store, self.keys, self.call_settings())

    def write_results(self, expected, scores, env: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.writer().write(expected, scores, lambda: self.scorer.aggregates(expected, scores), env)

    def all_videos(self) -> list[tuple[WorkItem, VideoKey, dict[str, Any]]] | None:
        """Every planned video with its sidecar when each one is present and matches it (size, sha256), else
        None (always None with ``--overwrite always``). Reads only: every rank of a launched run reaches the
        same answer from the same files. With every video here, no model is needed: scores are computed
        from the videos."""
        if self.plan.spec.overwrite == "always":
            return None
        expected = []
        for item in self.plan.items:
            key = self.key(item)
            meta, _ = self.store.check_video(key.relpath())
            if meta is None:
                return None  # missing or broken: the full run makes or repairs it
            expected.append((item, key, meta))
        return expected

    def run(self) -> dict[str, Any] | None:
        """Load, fit, generate, score and write results; a full disk is one ``ErasebenchError`` line (exit 2)."""
        try:
            return self._run()
        except Exception as exc:
            if not disk_full(exc):
                raise
            raise ErasebenchError(
                f"no space left under {str(self.plan.root)!r} ({getattr(exc, 'strerror', None) or 'disk full'}): stopped; "
                "finished videos are kept, free some space and rerun to resume"
            ) from None

    def _run(self) -> dict[str, Any] | None:
        plan = self.plan
        existing = plan.run_dir / "results.json"
        if plan.spec.overwrite == "never" and existing.is_file():
            self.log(f"--overwrite never: reusing {existing}")
            return json.loads(existing.read_text())
        if self.dist.is_main:
            removed = self.store.remove_stale_temps(self.started)
            if removed:
                self.note_repair(f"removed {len(removed)} temp files of killed runs, first: {str(removed[0])!r}")
        cached = self.all_videos()
        if cached is None:
            self.load()
            if self.dist.is_main:
                self.writer().write_manifest()
            self.generate()
            if self.made_elsewhere:
                self.log(f"generation: {self.generated} videos made here, {self.made_elsewhere} by another run on this folder")
        else:
            self.set_run_context()  # what a caller applying the erasers later (attacks) needs, without the pipeline
            self.log(f"generation: {len(cached)} of {len(cached)} videos cached, 0 to generate: no model loaded")
        if self.dist.world_size > 1:  # sharded scoring: each rank scores its own videos on its own device
            self.score(self.expected(self.mine()))
        self.dist.barrier()
        if not self.dist.is_main:
            return None
        expected = cached if cached is not None else self.expected()
        scores = self.score(expected)  # the ranks' scores, read from the score files; any missing computed here
        if cached is not None:
            existing = self.writer().up_to_date(expected, scores)
            if existing is not None:
                self.log(f"results: {str(plan.run_dir / 'results.json')!r} is up to date")
                return existing
        return self.write_results(expected, scores)

@dataclass
class GroupPlan:
    """One erasure group of a dry run: its concepts, its videos (how many cached) and its fit, if any."""

    eraser: str
    concepts: list[str]
    videos: int
    cached: int
    fit: str | None = None  # the fit artifact folder (None: the eraser needs no fit)
    fit_cached: bool = False


@dataclass
class DryRun:
    """What ``erasebench run`` would do (``dry_run``), from files alone: nothing written, no model loaded.

    A video counts as cached when its sidecar is readable and names its size (the sha256 is checked when the
    run starts); ``estimate_seconds`` is a rough time to generate the videos still to make
    (``plan_checks.estimate_seconds``: a per-pixel-step constant measured on the shapes model, a GPU taken
    as 100 times faster), not counting fits, loading or scoring."""

    run_name: str
    run_dir: str
    videos_total: int
    videos_cached: int
    scores_total: int
    scores_cached: int
    metrics: list[str]
    groups: list[GroupPlan]
    estimate_seconds: float
    model_local: bool = True  # False: a hub model not downloaded yet (every key that needs its files unknown)

    @property
    def videos_to_make(self) -> int:
        return self.videos_total - self.videos_cached

    @property
    def fits_to_make(self) -> int:
        return sum(1 for g in self.groups if g.fit and not g.fit_cached)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "videos_to_make": self.videos_to_make, "fits_to_make": self.fits_to_make}

    def lines(self) -> list[str]:
        """Plain lines of at most 80 columns (but the run name and paths)."""
        from .plan_checks import format_duration

        out = [
            "dry run: nothing written, no model loaded",
            f"run: {self.run_name}",
            f"videos: {self.videos_total} planned, {self.videos_cached} cached, {self.videos_to_make} to make",
            f"scores: {self.scores_cached} of {self.scores_total} cached ({', '.join(self.metrics) or 'no metric'})",
        ]
        if not self.model_local:
            out.append("model: not downloaded yet, so every video is counted as to make")
        for g in self.groups:
            out.append(f"group {g.eraser} ({', '.join(g.concepts) or '-'}): {g.videos} videos, {g.cached} cached")
            if g.fit is not None:
                out.append(f"  fit: {'cached' if g.fit_cached else 'to make'} ({g.fit})")
        out.append(
            f"estimate: about {format_duration(self.estimate_seconds)} for {self.videos_to_make} videos "
            "(rough: generation only)"
        )
        out.append(f"results: {self.run_dir}")
        return out


def dry_run(plan: RunPlan) -> DryRun:
    """What a run of ``plan`` would make and reuse, from the keys of ``benchmark/identity.py``: writes nothing
    and loads no model (a hub model not in the local cache is not downloaded)."""
    from .plan_checks import estimate_seconds

    store = ArtifactStore(plan.root)
    always = plan.spec.overwrite == "always"
    folder = identity.local_model_folder(plan.source, download=False)
    keys = identity.run_keys(plan, folder) if folder is not None else None
    metric_fps = {m.name: m.fingerprint() for m in plan.metrics}
    groups = []
    videos_cached = scores_cached = 0
    for group in plan.groups:
        cached = 0
        for item in group.items if keys is not None and not always else []:
            video = store.video_path(keys.key(item))
            try:
                meta = json.loads(store.sidecar_path(video).read_text(encoding="utf-8"))
                present = video.stat().st_size == meta["video"]["bytes"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if present:
                cached += 1
                scores_cached += sum(
                    1 for name, fp in metric_fps.items() if store.score_path(name, fp, meta["video"]["sha256"]).is_file()
                )
        videos_cached += cached
        rel = keys.artifact_rel(group.eraser) if keys is not None else None
        needs_fit = group.eraser.needs_fit
        fit_cached = bool(rel) and not always and Runner.artifact_problem(plan.root / rel) is None
        groups.append(GroupPlan(
            group.eraser.name, [c.name for c in group.eraser.concepts], len(group.items), cached,
            (rel or "(unknown until the model is downloaded)") if needs_fit else None, fit_cached,
        ))
    return DryRun(
        run_name=plan.run_name,
        run_dir=str(plan.run_dir),
        videos_total=len(plan.items),
        videos_cached=videos_cached,
        scores_total=len(plan.items) * len(plan.metrics),
        scores_cached=scores_cached,
        metrics=list(metric_fps),
        groups=groups,
        estimate_seconds=float(estimate_seconds(plan, len(plan.items) - videos_cached)),
        model_local=folder is not None,
    )


def load_spec_file(path: Path) -> dict[str, Any]:
    from .suites import read_yaml

    return read_yaml(path, "config file")


def parse_plugin_list(text: str | None) -> tuple[PluginSpec, ...]:
    if not text:
        return ()
    return tuple(PluginSpec(name=name.strip()) for name in text.split(",") if name.strip())
