"""Prometheus rule files and promtool unit-test files as typed data, dumped with PyYAML.

The shapes follow Prometheus's own documents: a rule file is `groups:` of `{name, interval,
rules}`, a rule is alerting (`alert`, `expr`, `for`, `labels`, `annotations`) or recording
(`record`, `expr`, `labels`); a `promtool test rules` file is `rule_files`,
`evaluation_interval` and `tests:` of `{interval, input_series, alert_rule_tests}`.

>>> rule = AlertingRule(alert="StorageFull", expr="up == 0", for_s=60, labels={"severity": "page"})
>>> print(to_yaml(RuleFile(groups=[RuleGroup(name="g", interval_s=30, rules=[rule])])), end="")
groups:
- name: g
  interval: 30s
  rules:
  - alert: StorageFull
    expr: up == 0
    for: 1m
    labels:
      severity: page
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml


def prom_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: `14400` -> `4h`, `90` -> `1m30s`, `0.5` -> `500ms`.

    >>> prom_duration(14400), prom_duration(90), prom_duration(0.5), prom_duration(86400 * 3)
    ('4h', '1m30s', '500ms', '3d')
    """
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite and >= 0, got {seconds}")
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    rest, parts = ms // 1000, []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class AlertingRule:
    alert: str
    expr: str
    for_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_s:
            data["for"] = prom_duration(self.for_s)
        if self.labels:
            data["labels"] = dict(self.labels)
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            data["labels"] = dict(self.labels)
        return data


Rule = AlertingRule | RecordingRule


@dataclass(frozen=True)
class RuleGroup:
    name: str
    interval_s: float
    rules: list[Rule]

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "interval": prom_duration(self.interval_s),
                "rules": [r.to_data() for r in self.rules]}


@dataclass(frozen=True)
class RuleFile:
    groups: list[RuleGroup]

    def to_data(self) -> dict[str, Any]:
        return {"groups": [g.to_data() for g in self.groups]}

    @property
    def alerts(self) -> list[AlertingRule]:
        return [r for g in self.groups for r in g.rules if isinstance(r, AlertingRule)]


def prometheus_rule(rules: RuleFile, name: str, labels: dict[str, str] | None = None
                    ) -> dict[str, Any]:
    """The same groups as a Prometheus operator `PrometheusRule` resource."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": name, "labels": dict(labels or {})},
            "spec": rules.to_data()}


# --- promtool test rules -------------------------------------------------------------------------
@dataclass(frozen=True)
class Series:
    """`series` in promtool's notation and its `values`, e.g. `0+10x30` (0, 10, ... 300)."""

    series: str
    values: str


@dataclass(frozen=True)
class ExpectedAlert:
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True)
class AlertTest:
    """At `eval_time_s`, alert `alertname` is firing exactly with `expected` (none: silent)."""

    alertname: str
    eval_time_s: float
    expected: list[ExpectedAlert] = field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        return {"eval_time": prom_duration(self.eval_time_s), "alertname": self.alertname,
                "exp_alerts": [{"exp_labels": dict(e.labels),
                                "exp_annotations": dict(e.annotations)}
                               for e in self.expected]}


@dataclass(frozen=True)
class TestCase:
    name: str
    interval_s: float
    series: list[Series]
    alert_tests: list[AlertTest]

    __test__ = False  # not a pytest class

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "interval": prom_duration(self.interval_s),
                "input_series": [{"series": s.series, "values": s.values}
                                 for s in self.series],
                "alert_rule_test": [t.to_data() for t in self.alert_tests]}


@dataclass(frozen=True)
class TestFile:
    rule_files: list[str]
    evaluation_interval_s: float
    tests: list[TestCase]

    __test__ = False

    def to_data(self) -> dict[str, Any]:
        return {"rule_files": list(self.rule_files),
                "evaluation_interval": prom_duration(self.evaluation_interval_s),
                "tests": [t.to_data() for t in self.tests]}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL with `and`/`or` tiers) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(document: RuleFile | TestFile | dict[str, Any]) -> str:
    """YAML text; long lines stay whole (PromQL folded over lines is hard to read)."""
    data = document if isinstance(document, dict) else document.to_data()
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**6)
