"""One load process's journeys: the template environment, the steps compiled once, and the
data pools, shared by every user of the process (`process(environment, settings)`)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shop_loadtest.journeys import (
    CompiledFor,
    CompiledIf,
    CompiledRepeat,
    CompiledRequest,
    CompiledSet,
    DataPool,
    ExportStep,
    ForStep,
    IfStep,
    Journey,
    RepeatStep,
    RequestStep,
    SecretEnv,
    SetStep,
    Settings,
    ThinkStep,
    compile_request,
    compile_set,
    compile_test,
    compile_value,
    make_environment,
    names_used,
    step_template_texts,
)


@dataclass
class Block:
    """Compiled steps, and the data sources whose rows they use (drawn when the block starts)."""

    items: list[CompiledRequest | CompiledSet | CompiledRepeat | CompiledIf | CompiledFor
                | ThinkStep | ExportStep]
    data: tuple[str, ...]
    wheres: list[str]  # "step 2 of journey buy", for each item: refusals name the step
    repeats: bool = False  # holds repeat, for or if blocks: a run goes through `expand`

    def where(self, index: int) -> str:
        """Which step the run's item `index` is, for a refusal message; a block with repeats
        is expanded per run, so there only the journey is named."""
        if self.repeats or index >= len(self.wheres):
            return self.wheres[0].replace("step 1", "a step") if self.wheres else "a step"
        return self.wheres[index]


@dataclass
class CompiledJourney:
    on_start: Block
    steps: Block
    on_stop: Block


class Process:
    """One load process's journeys: the template environment, compiled steps, data pools."""

    def __init__(self, environment: Any, settings: Settings) -> None:
        state = getattr(environment, "shop_loadtest", None)
        # Share the runtime's SecretEnv: the recorder redacts every value it handed out.
        self.secrets: SecretEnv = (state.templates.globals["env"] if state is not None
                                   else SecretEnv())
        options = getattr(environment, "parsed_options", None)
        cli_seed = getattr(options, "slt_seed", None)
        seed = cli_seed if cli_seed is not None else settings.seed
        self.templates = make_environment(seed=seed, locale=settings.locale,
                                          secrets=self.secrets)
        self.settings = settings
        self.variables = {name: compile_value(self.templates, value)
                          for name, value in settings.variables.items()}
        self.pools = {source.name: DataPool.load(source, random.Random(seed))
                      for source in settings.data}
        share = getattr(environment, "slt_data_share", None)
        if share is not None:
            self.share(*share)
        self._compiled: dict[str, CompiledJourney] = {}

    def share(self, index: int, count: int) -> None:
        for pool in self.pools.values():
            pool.share(index, count)

    def compiled(self, journey: Journey) -> CompiledJourney:
        found = self._compiled.get(journey.name)
        if found is None:
            found = self._compiled[journey.name] = CompiledJourney(
                self._block(journey.on_start, f"on_start step {{}} of journey {journey.name}"),
                self._block(journey.steps, f"step {{}} of journey {journey.name}"),
                self._block(journey.on_stop, f"on_stop step {{}} of journey {journey.name}"))
        return found

    def _block(self, steps: Sequence[RequestStep | ThinkStep | SetStep | RepeatStep | IfStep
                                      | ForStep | ExportStep],
               where: str = "step {} of the journey") -> Block:
        texts = [t for s in steps if not isinstance(s, ThinkStep | ExportStep)
                 for t in step_template_texts(s)]
        used = names_used(self.templates, texts) & set(self.pools)
        items = [self._step(s) for s in steps]
        wheres = [where.format(i) for i in range(1, len(steps) + 1)]
        return Block(items, tuple(sorted(used)), wheres, repeats=any(
            isinstance(s, RepeatStep | ForStep) or (isinstance(s, IfStep) and s.step is None)
            for s in steps))

    def _step(self, step: RequestStep | ThinkStep | SetStep | IfStep | RepeatStep | ForStep
              | ExportStep) -> Any:
        if isinstance(step, RepeatStep):
            return CompiledRepeat(step, [self._step(i) for i in step.steps])
        if isinstance(step, ForStep):
            return CompiledFor(step, compile_test(self.templates, step.source),
                               [self._step(i) for i in step.steps])
        if isinstance(step, IfStep):
            then = (self._step(step.step) if step.step is not None else
                    [self._step(i) for i in step.steps])
            return CompiledIf(step, compile_test(self.templates, step.test), then)
        if isinstance(step, ThinkStep | ExportStep):  # nothing to compile
            return step
        if isinstance(step, SetStep):
            return compile_set(self.templates, step)
        return compile_request(self.templates, step, self.settings.headers,
                               self.settings.timeout)


def process(environment: Any, settings: Settings) -> Process:
    proc = getattr(environment, "slt_journeys", None)
    if proc is None:
        proc = Process(environment, settings)
        environment.slt_journeys = proc
    return proc


def set_data_share(environment: Any, index: int, count: int) -> None:
    """Give this load process the data rows `index::count` (worker `index` of `count`), so
    `mode: unique` rows are never used twice across workers. Call it before the load starts
    (at the latest: rows already handed out stay used)."""
    environment.slt_data_share = (index, count)
    proc = getattr(environment, "slt_journeys", None)
    if proc is not None:
        proc.share(index, count)
