"""The ``@job`` decorator and the component export behind it: turns the WIT ``run`` call
into a call of the job function (awaited to its end if it is ``async def``), and its
exceptions into the WIT ``error``.

A component holds one ``@job`` function, or every function of a tglib-style ``jobs.py``
(:func:`export_jobs`): then a run calls the one its job's name names."""

import inspect
import json
import os
import re
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import wit_world
from componentize_py_types import Err
from wit_world.imports import context as _context
from wit_world.imports.types import RunContext

from . import _aio, _service
from .errors import Error, InvalidArgument

# Longest error message a run returns: a traceback is kept whole up to this, and past it
# its start and end (where the exception is) are kept.
MAX_MESSAGE = 16 * 1024


@dataclass
class Ctx:
    """Facts about the current run."""

    job: str
    """The job's name in the configuration."""
    run_id: str
    """Unique per run; also in the runner's logs and history."""
    pipeline: str
    """The pipeline that enqueued the run (``manual`` for a run started by hand)."""
    start_time_ms: int
    """When the producer scheduled the run, in ms since the Unix epoch."""

    @property
    def run_key(self) -> str:
        """A key for this scheduled run, ``pipeline/job/start_time_ms``: the same for every
        attempt of one due run (a retry, or a delivery again after its runner died, on any
        replica of a cluster), unlike ``run_id``. Key effects that must happen once on it."""
        return f"{self.pipeline}/{self.job}/{self.start_time_ms}"

    def settings(self) -> Dict[str, Any]:
        """The service's own settings: the top-level keys of ``service_config.json`` that
        the runner does not use itself."""
        return json.loads(_context.service_settings() or "{}")

    def setting(self, key: str, default: Any = None) -> Any:
        """One service setting, or ``default`` if it is absent."""
        return self.settings().get(key, default)


# Names the runner fills in; every other parameter comes from the job's `params`.
_FROM_RUNNER = ("ctx", "start_time_ms")

_job: Optional[Callable] = None
# A tglib-style module's jobs by name (export_jobs), else empty.
_by_name: Dict[str, Callable] = {}


def _expose(module_name: str) -> None:
    # componentize-py looks for the world's class in the app module: put it there, so a
    # job file holds nothing but its functions.
    sys.modules[module_name].WitWorld = _Export


def job(fn: Callable) -> Callable:
    """Registers ``fn`` as this component's job (one per component). It may be
    ``async def``: the SDK awaits it (see :mod:`tgrun._aio`)."""
    global _job
    if _job is not None or _by_name:
        raise TypeError(
            f"one job per component: '{(_job or next(iter(_by_name.values()))).__name__}' "
            f"is already registered, so '{fn.__name__}' cannot be"
        )
    if inspect.iscoroutinefunction(fn):
        _aio.prepare()
    _plan(fn)
    _job = fn
    _warm(fn.__name__)
    _expose(fn.__module__)
    return fn


def export_jobs(module, app_module: str) -> None:
    """Exports every public function defined in ``module`` (a tglib service's ``jobs.py``)
    as a job of this component, called by its name: the configuration's job ``add_x``
    runs ``module.add_x``. ``app_module`` is the module componentize-py builds from."""
    if _job is not None:
        raise TypeError(f"'{_job.__name__}' is registered with @job already")
    for name, fn in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(fn):
            continue
        if fn.__module__ != module.__name__:
            continue  # imported into jobs.py, not one of its jobs
        _by_name[name] = fn
        _plan(fn)
        if inspect.iscoroutinefunction(fn):
            _aio.prepare()
    if not _by_name:
        raise TypeError(f"{module.__name__} defines no function to run as a job")
    for name in _by_name:
        _warm(name)
    _expose(app_module)


def _function_for(job_name: str) -> Callable:
    if _job is not None:
        return _job
    fn = _by_name.get(job_name)
    if fn is None:
        raise Error(
            f"this component has no job '{job_name}' (its jobs: {', '.join(sorted(_by_name))})"
        )
    return fn


def _prepare(ctx: RunContext, params: str) -> Tuple[Callable, Dict[str, Any]]:
    """The function a run calls and its keyword arguments, or the ``Error`` why not."""
    c = Ctx(ctx.job, ctx.run_id, ctx.pipeline, ctx.start_time_ms)
    fn = _function_for(c.job)
    return fn, _arguments(fn, c, params)


def _call(fn: Callable, kwargs: Dict[str, Any]) -> Any:
    result = fn(**kwargs)
    if inspect.iscoroutine(result):
        return _aio.run(result)
    return result


@dataclass(frozen=True)
class _Plan:
    """What a job function's signature asks of a call, read once: at registration, which
    componentize-py runs at build time, so every run's fresh instance finds it made (read
    with ``inspect`` on every run, it cost a trivial job 311 page faults a run against 219)."""

    from_runner: tuple
    """Of ``ctx`` and ``start_time_ms``, those the function takes."""
    named: tuple
    """Every other parameter it takes by name."""
    required: frozenset
    """Of ``named``, those without a default."""
    takes_any: bool
    """Whether it takes ``**kwargs``."""

    @staticmethod
    def of(fn: Callable) -> "_Plan":
        params = inspect.signature(fn).parameters
        named = tuple(
            n
            for n, p in params.items()
            if n not in _FROM_RUNNER and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        return _Plan(
            from_runner=tuple(n for n in _FROM_RUNNER if n in params),
            named=named,
            required=frozenset(n for n in named if params[n].default is inspect.Parameter.empty),
            takes_any=any(p.kind is p.VAR_KEYWORD for p in params.values()),
        )


# Each registered function's plan, made when it registers.
_plans: Dict[Callable, _Plan] = {}


def _plan(fn: Callable) -> _Plan:
    plan = _plans.get(fn)
    if plan is None:
        plan = _plans[fn] = _Plan.of(fn)
    return plan


def _warm(name: str) -> None:
    """Runs the SDK's side of a run of job ``name`` (all but the job itself) a few times at
    build time, so that its bytecode is already specialised in the snapshot: code that runs
    the first time in an instance rewrites itself (CPython's adaptive interpreter), and
    each page it rewrites is a page copied again for every run."""
    for _ in range(64):
        try:
            _prepare(RunContext(name, "warm", "warm", 0), "{}")
        except Error:
            pass  # a job with required params: the path up to the check is warm


def _params(ctx: Ctx, raw: str) -> Dict[str, Any]:
    """The run's params, or an ``InvalidArgument`` naming the mistake."""
    where = f"params of job '{ctx.job}'"
    try:
        params = json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        raise InvalidArgument(f"{where}: not JSON: {e}") from None
    if not isinstance(params, dict):
        raise InvalidArgument(f"{where}: must be a JSON object, not {type(params).__name__}")
    return params


def _arguments(fn: Callable, ctx: Ctx, raw: str) -> Dict[str, Any]:
    """The keyword arguments of one call, or an ``InvalidArgument`` naming the mistake."""
    return _keywords(fn, ctx, _params(ctx, raw))


def _keywords(fn: Callable, ctx: Ctx, params: Dict[str, Any]) -> Dict[str, Any]:
    """``params`` and what the runner fills in as the keyword arguments of one call of
    ``fn``, or an ``InvalidArgument`` naming the mistake."""
    where = f"params of job '{ctx.job}'"
    plan = _plan(fn)
    kwargs: Dict[str, Any] = {}
    for name in plan.from_runner:
        if name in params:
            raise InvalidArgument(
                f"{where}: '{name}' is given by the runner, not by the configuration"
            )
        kwargs[name] = ctx if name == "ctx" else ctx.start_time_ms

    if not plan.takes_any:
        unknown = [k for k in params if k not in plan.named]
        if unknown:
            raise InvalidArgument(
                f"{where}: unexpected {', '.join(repr(k) for k in unknown)} "
                f"(the function takes: {', '.join(plan.named) or 'nothing'})"
            )
    missing = [n for n in plan.named if n in plan.required and n not in params]
    if missing:
        raise InvalidArgument(f"{where}: missing {', '.join(repr(m) for m in missing)}")
    kwargs.update(params)
    return kwargs


_SDK_DIR = os.path.dirname(os.path.abspath(__file__))
# The SDK's packages (tgrun, and tglib over it) and asyncio's loop: frames a job author
# did not write.
_NOT_THE_JOBS = (_SDK_DIR, os.path.join(os.path.dirname(_SDK_DIR), "tglib"))
_MOUNT = re.compile(r"^/[0-9]+/")


def _theirs(filename: str) -> bool:
    path = os.path.abspath(filename)
    return "/asyncio/" in path or any(
        path == d or path.startswith(d + os.sep) for d in _NOT_THE_JOBS
    )


def _trim(tb: traceback.TracebackException) -> None:
    frames = [f for f in tb.stack if not _theirs(f.filename)]
    for f in frames:
        # componentize-py mounts each source folder at /0, /1, ...: `app.py` says more.
        f.filename = _MOUNT.sub("", f.filename)
    if frames:
        tb.stack = traceback.StackSummary.from_list(frames)


def _job_frames(e: BaseException) -> traceback.TracebackException:
    """The exception's traceback without the SDK's own frames (the call into the job at
    the top, the host call at the bottom) and asyncio's (an ``async def`` job's loop):
    what is left is the job's code. A tglib error raised for an SDK error says what it
    does: the SDK error behind it is left out."""
    tb = traceback.TracebackException.from_exception(e)
    if isinstance(e.__cause__, Error) and str(e.__cause__) == str(e):
        tb.__cause__ = None
    level = tb
    while level is not None:
        _trim(level)
        level = level.__cause__ or level.__context__
    return tb


# Why a module may be missing in a run that imports it late.
_BUILT_WITH = (
    " (a tgrun Python component has only the modules imported while it was built: "
    "import it at module level)"
)


def _message(e: BaseException) -> str:
    """The exception first (what an operator reads in one line), then its traceback."""
    head = f"{type(e).__name__}: {e}" if not isinstance(e, Error) else str(e)
    if isinstance(e, ModuleNotFoundError):
        head += _BUILT_WITH
    tb = "".join(_job_frames(e).format())
    text = f"{head}\n\n{tb.rstrip()}"
    if len(text) > MAX_MESSAGE:
        half = MAX_MESSAGE // 2
        text = f"{text[:half]}\n[... {len(text) - MAX_MESSAGE} characters left out ...]\n{text[-half:]}"
    return text


def _failure(e: BaseException) -> Err:
    """A job's or handler's exception as the WIT ``error``: an SDK error keeps its kind, and
    so does a tglib exception raised for one (its cause); anything else is ``failed``."""
    if isinstance(e, Error):
        return Err(e._wit_case(_message(e)))
    case = getattr(e.__cause__, "_wit_case", wit_world.imports.types.Error_Failed)
    return Err(case(_message(e)))


def _environment() -> None:
    """``os.environ`` as this run's: its job's (or route's) ``env``. The interpreter read
    its environment when the component was built, not when the run began."""
    env = dict(_context.environment())
    if env != os.environ:
        os.environ.clear()
        os.environ.update(env)


class _Export(wit_world.WitWorld):
    def handle(self, req):
        """The `service` world's routes (see :mod:`tgrun._handler`)."""
        from . import _handler

        _environment()
        # A tglib service's main() sets up for its routes too (see tgrun._service).
        prepare = _service.setup_for_route if _service.active() else None
        try:
            return _handler.handle(req, prepare)
        except BaseException as e:
            raise _failure(e) from None

    def run(self, ctx, params: str) -> None:
        _environment()
        if _job is None and not _by_name:
            raise Err(wit_world.imports.types.Error_Failed("no function is registered with @job"))
        if _service.active():
            return self._run_service(ctx, params)
        try:
            fn, kwargs = _prepare(ctx, params)
        except Error as e:
            # The configuration's mistake, not the code's: no traceback into the SDK.
            raise Err(e._wit_case(e.message)) from None
        try:
            _call(fn, kwargs)
        except BaseException as e:  # SystemExit too: a job's exit is its failure
            raise _failure(e) from None

    def _run_service(self, ctx, params: str) -> None:
        """A run through the service's main.py (see :mod:`tgrun._service`): its producer's
        tick makes the job's params, and its consumer calls the job."""
        c = Ctx(ctx.job, ctx.run_id, ctx.pipeline, ctx.start_time_ms)
        try:
            fn = _function_for(c.job)
            configured = _params(c, params)
        except Error as e:
            raise Err(e._wit_case(e.message)) from None
        try:
            _service.run(
                c.job,
                c.pipeline,
                c.start_time_ms,
                configured,
                lambda record: _call(fn, _keywords(fn, c, dict(record.params))),
            )
        except BaseException as e:
            raise _failure(e) from None
