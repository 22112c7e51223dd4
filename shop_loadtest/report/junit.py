"""junit.xml: one testsuite, one testcase per budget, plus the run's own health checks."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from shop_loadtest.judge.budgets import format_value
from shop_loadtest.judge.model import Summary
from shop_loadtest.judge.verdict import ALLOWED_HOSTS_RULE, refusal_reasons
from shop_loadtest.safety.text import xml_safe


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")


def render_junit(summary: Summary) -> str:
    """JUnit XML for CI: a broken budget is a failure; an untrusted run is an error."""
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name=f"shop-loadtest {summary['scenario']}",
                          timestamp=str(summary.get("started_at") or ""),
                          time=f"{summary['duration_s']:g}")
    failures = errors = 0
    for budget in summary["budgets"]:
        case = _case(suite, "budgets", budget["expr"])
        observed = format_value(budget["observed"], budget["unit"])
        limit = format_value(budget["limit"], budget["unit"])
        detail = f"scope: {budget['scope']}"
        if breach := budget.get("first_breach"):
            start, end = breach
            detail += f"; first breach in the window {start:g}-{end:g} s"
        if budget["status"] == "no_data":
            errors += 1
            ET.SubElement(case, "error", message=f"no data: {budget['note']}",
                          type="no_data").text = detail
        elif not budget["passed"]:
            failures += 1
            ET.SubElement(case, "failure", message=f"observed {observed} vs limit {limit}",
                          type="budget").text = detail
        else:
            ET.SubElement(case, "system-out").text = f"observed {observed} vs limit {limit}"
    refused = summary.get("refused")
    if refused:
        case = _case(suite, "always-on", ALLOWED_HOSTS_RULE)
        if not refused["passed"]:
            failures += 1
            ET.SubElement(case, "failure", message=f"{refused['count']} requests refused",
                          type="host_not_allowed").text = "\n".join(refusal_reasons(refused, None))
    health = _case(suite, "run", "generator health")
    if summary["generator"]["problems"]:
        errors += 1
        ET.SubElement(health, "error", message="; ".join(summary["generator"]["problems"]),
                      type="inconclusive")
    completed = _case(suite, "run", "run completed")
    other = [r for r in summary["reasons"] if r not in summary["generator"]["problems"]]
    if summary["aborted"] is not None:
        failures += 1
        ET.SubElement(completed, "failure", message=f"aborted by rule "
                      f"{summary['aborted'].get('rule')!r}", type="aborted")
    elif summary["verdict"] == "inconclusive" and not summary["generator"]["problems"]:
        errors += 1
        ET.SubElement(completed, "error", message="; ".join(other), type="inconclusive")
    suite.set("tests", str(len(summary["budgets"]) + 2 + bool(refused)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    props = ET.Element("properties")
    for key in ("verdict", "requests", "failures", "error_rate", "rps", "exit_reason"):
        ET.SubElement(props, "property", name=key, value=str(summary.get(key)))
    suite.insert(0, props)
    ET.SubElement(suite, "system-out").text = "\n".join(
        [f"verdict: {summary['verdict']}", *summary["reasons"]])
    ET.indent(root)
    # ElementTree escapes markup but writes what XML 1.0 forbids (a control character in a
    # name) as it is: the file would not parse.
    return xml_safe(ET.tostring(root, encoding="unicode", xml_declaration=True)) + "\n"
