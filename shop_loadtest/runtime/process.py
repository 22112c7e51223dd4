"""One load process's journeys: the template environment, the steps compiled once, and the
data pools, shared by every user of the process (`process(environment, settings)`)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from shop_loadtest.journeys import (
    CompiledIf,
    CompiledRepeat,
    CompiledRequest,
    CompiledSet,
    DataPool,
    ExportStep,
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

    items: list[CompiledRequest | CompiledSet | CompiledRepeat | CompiledIf | ThinkStep
                | ExportStep]
    data: tuple[str, ...]
    wheres: list[str]  # "step 2 of journey buy", for each item: refusals name the step
    repeats: bool = False  # holds repeat blocks: a run goes through `expand(items)`

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

    def _block(self, steps: list[RequestStep | ThinkStep | SetStep | RepeatStep | IfStep
                                 | ExportStep],
               where: str = "step {} of the journey") -> Block:
        texts = [t for s in steps if not isinstance(s, ThinkStep | ExportStep)
                 for t in step_template_texts(s)]
        used = names_used(self.templates, texts) & set(self.pools)
        items = [CompiledRepeat(s, [self._step(i) for i in s.steps])
                 if isinstance(s, RepeatStep) else self._step(s) for s in steps]
        wheres = [where.format(i) for i in range(1, len(steps) + 1)]
        return Block(items, tuple(sorted(used)), wheres,
                     repeats=any(isinstance(s, RepeatStep) for s in steps))

    def _step(self, step: RequestStep | ThinkStep | SetStep | IfStep | ExportStep) -> Any:
        if isinstance(step, IfStep):
            return CompiledIf(step, compile_test(self.templates, step.test),
                              self._step(step.step))
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
