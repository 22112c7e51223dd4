"""deploy/: the image, the Kubernetes manifests and the Helm values hold together.

No cluster and no Docker engine here, so: every manifest is validated offline against the
Kubernetes OpenAPI schemas (kubernetes-validate bundles them), and the wiring between the
pieces is checked against the real code: the commands are parsed by the real CLI, the
scenario in the ConfigMap is loaded by the real loader, and data-file paths are computed by
the real generator.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
HELM_VALUES = DEPLOY / "helm" / "values-deliveryhero.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
SECRET_WORDS = re.compile(r"token|passw|secret|api[_-]?key|credential", re.I)
# Where Locust writes the locustfile a worker fetches with `-f -` (tempfile.gettempdir() in
# the official image, which sets no TMPDIR); the worker Deployment mounts an emptyDir there.
WORKER_TMP = "/tmp"


# --- loading ----------------------------------------------------------------------------------

def load_docs(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert docs, f"{path}: no YAML document"
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
    return docs


def kustomization() -> dict[str, Any]:
    return load_docs(K8S / "kustomization.yaml")[0]


def applied() -> list[dict[str, Any]]:
    """The resources `kubectl apply -k deploy/k8s` creates."""
    return [doc for name in kustomization()["resources"] for doc in load_docs(K8S / name)]


def all_resources() -> list[dict[str, Any]]:
    """Every Kubernetes object under deploy/k8s, the optional reports reader included."""
    return [doc for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in load_docs(path)]


def one(kind: str, resources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    found = [r for r in (resources or applied()) if r["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def cli_command(name: str) -> Any:
    from shop_loadtest.cli import app

    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


def parse_cli(args: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse `shop-loadtest ARGS` as the real CLI would, without running it."""
    name, rest = args[0], args[1:]
    ctx = cli_command(name).make_context(name, list(rest))
    return name, dict(ctx.params)


def master_params() -> dict[str, Any]:
    name, params = parse_cli(container(one("Job"))["args"])
    assert name == "master"
    return params


def worker_params() -> dict[str, Any]:
    name, params = parse_cli(container(one("Deployment"))["args"])
    assert name == "worker"
    return params


def helm_values() -> dict[str, Any]:
    return load_docs(HELM_VALUES)[0]


def here_paths(source: str) -> list[str]:
    """The `HERE / '...'` paths (data files, user classes) of a generated locustfile."""
    return re.findall(r"HERE / '([^']+)'", source)


def render(scenario_file: Path, *, source: str, output: str) -> str:
    from shop_loadtest.generate.locustfile import render_locustfile
    from shop_loadtest.scenario import load_scenario

    return render_locustfile(load_scenario(scenario_file), source=source, output=output,
                             base=scenario_file.parent)


def scenarios_with_data() -> list[Path]:
    return [p for p in sorted((ROOT / "scenarios").glob("*.yaml"))
            if (yaml.safe_load(p.read_text()) or {}).get("data")]


# --- files and kinds --------------------------------------------------------------------------

def test_every_yaml_file_under_deploy_parses():
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 9
    for path in files:
        load_docs(path)


def test_the_kustomization_lists_existing_files_and_every_needed_kind():
    kust = kustomization()
    assert kust["apiVersion"].startswith("kustomize.config.k8s.io/")
    for name in kust["resources"]:
        assert (K8S / name).is_file(), name
    kinds = sorted(r["kind"] for r in applied())
    assert kinds == sorted(["Namespace", "ConfigMap", "PersistentVolumeClaim", "Service", "Job",
                            "Deployment"])
    # the images: entry is the knob for the registry: it must name the image the pods use
    image_names = {entry["name"] for entry in kust["images"]}
    for workload in (one("Job"), one("Deployment")):
        assert container(workload)["image"].split(":")[0] in image_names
    assert one("Namespace")["metadata"]["name"] == kust["namespace"]


@pytest.fixture(scope="module")
def kubernetes_validate():
    return pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate (dev extra) is not installed: schema validation skipped; "
               "the structural tests below still run")


def test_every_manifest_is_valid_against_the_kubernetes_schemas(kubernetes_validate):
    # strict: an unknown or misplaced field is an error, as `kubectl apply` would report it.
    # 1.25 is the oldest schema set bundled; the latest is what new clusters run.
    versions = ["1.25", kubernetes_validate.latest_version()]
    resources = all_resources()
    assert len(resources) >= 7
    for resource in resources:
        for version in versions:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{resource['kind']} {resource['metadata']['name']} is invalid for "
                            f"Kubernetes {version}: {exc.message} at {list(exc.absolute_path)}")


def test_the_schema_validation_does_catch_a_broken_manifest(kubernetes_validate):
    job = one("Job")
    broken = json.loads(json.dumps(job))
    container(broken)["portz"] = [{"containerPort": 5557}]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.25", strict=True)


# --- wiring -----------------------------------------------------------------------------------

def test_selectors_match_their_pods_and_the_service_selects_only_the_master():
    job, deployment, service = one("Job"), one("Deployment"), one("Service")
    master_labels = job["spec"]["template"]["metadata"]["labels"]
    worker_labels = deployment["spec"]["template"]["metadata"]["labels"]
    match = deployment["spec"]["selector"]["matchLabels"]
    assert match.items() <= worker_labels.items()
    selector = service["spec"]["selector"]
    assert selector.items() <= master_labels.items()
    assert not selector.items() <= worker_labels.items(), "the Service would also pick workers"
    reader = one("Pod", all_resources())
    assert not selector.items() <= reader["metadata"]["labels"].items()
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
    assert spread["labelSelector"]["matchLabels"].items() <= worker_labels.items()
    for resource in all_resources():
        assert resource["metadata"]["labels"][LABEL_NAME] == "shop-loadtest"
    assert master_labels[LABEL_COMPONENT] == "master"
    assert worker_labels[LABEL_COMPONENT] == "worker"


def test_workers_reach_the_master_through_the_service_on_the_masters_port():
    service = one("Service")
    master = container(one("Job"))
    ports = service["spec"]["ports"]
    assert len(ports) == 1
    master_port = master_params()["port"]
    worker = worker_params()
    assert worker["master_host"] == service["metadata"]["name"]
    assert worker["master_port"] == ports[0]["port"] == master_port
    named = {p["name"]: p["containerPort"] for p in master["ports"]}
    target = ports[0]["targetPort"]
    assert named.get(target, target) == master_port
    assert master_params()["bind"] in {"*", "0.0.0.0"}, "workers on other pods must get in"


def test_the_master_waits_for_exactly_the_workers_the_deployment_starts():
    deployment = one("Deployment")
    assert master_params()["expect_workers"] == deployment["spec"]["replicas"]
    job = one("Job")
    assert job["spec"]["backoffLimit"] == 0, "a campaign's load must never be replayed by itself"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["activeDeadlineSeconds"] > master_params()["wait"] + 13 * 60


@pytest.mark.parametrize("command", ["master", "worker"])
def test_every_option_the_manifests_use_exists_in_the_cli_help(command):
    workload = one("Job") if command == "master" else one("Deployment")
    spec = container(workload)
    assert spec["command"] == ["shop-loadtest"]
    args = spec["args"]
    assert args[0] == command
    used = {a.split("=")[0] for a in args if a.startswith("--")}
    assert used
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    result = subprocess.run([sys.executable, "-m", "shop_loadtest", command, "--help"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    for option in used:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.stdout), (
            f"`shop-loadtest {command}` has no option {option}")


def test_the_scenario_in_the_configmap_loads_and_allows_the_masters_host(tmp_path):
    from shop_loadtest.run.runner import check_target_allowed
    from shop_loadtest.scenario import load_scenario

    configmap = one("ConfigMap")
    job = one("Job")
    params = master_params()
    mounts = {m["mountPath"]: m for m in container(job)["volumeMounts"]}
    scenario_path = str(params["file"])
    mount = mounts[scenario_path]
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
    text = configmap["data"][mount["subPath"]]
    path = tmp_path / mount["subPath"]
    path.write_text(text)
    scenario = load_scenario(path)
    assert params["host"], "in a cluster the target must be explicit"
    check_target_allowed(scenario, params["host"], tuple(params["allow_host"] or ()))
    assert str(params["reports"]) in mounts, "run folders must land on the reports volume"
    claim = volumes[mounts[str(params["reports"])]["name"]]["persistentVolumeClaim"]
    assert claim["claimName"] == one("PersistentVolumeClaim")["metadata"]["name"]


@pytest.mark.parametrize("scenario_file", scenarios_with_data(), ids=lambda p: p.stem)
def test_data_files_resolve_on_the_master_and_on_workers_that_fetch_the_locustfile(
        scenario_file):
    """The master writes /reports/<run>/locustfile.py with data paths relative to it; a worker
    fetching it with `-f -` writes it to /tmp. Both must find the data where it is mounted."""
    params = master_params()
    scenario_dir = posixpath.dirname(str(params["file"]))
    run_dir = posixpath.join(str(params["reports"]), f"{scenario_file.stem}-20261126T000000Z")
    source = render(scenario_file, source=posixpath.join(scenario_dir, scenario_file.name),
                    output=posixpath.join(run_dir, "locustfile.py"))
    paths = here_paths(source)
    assert paths, "a scenario with data files must reference them"
    master_mounts = {m["mountPath"] for m in container(one("Job"))["volumeMounts"]}
    worker_mounts = {m["mountPath"] for m in container(one("Deployment"))["volumeMounts"]}
    assert WORKER_TMP in worker_mounts
    for relative in paths:
        on_master = posixpath.normpath(posixpath.join(run_dir, relative))
        on_worker = posixpath.normpath(posixpath.join(WORKER_TMP, relative))
        assert on_worker == on_master, relative
        assert posixpath.dirname(on_master) in master_mounts & worker_mounts, on_master


# --- secrets ----------------------------------------------------------------------------------

def _env_entries(resource: dict[str, Any]) -> list[dict[str, Any]]:
    spec = resource.get("spec", {})
    pod = spec["template"]["spec"] if "template" in spec else spec
    return [e for c in pod.get("containers", []) for e in c.get("env", [])]


def test_no_secret_value_is_written_in_the_manifests():
    for resource in all_resources():
        assert resource["kind"] != "Secret", "create the Secret with kubectl, not in git"
        for entry in _env_entries(resource):
            if SECRET_WORDS.search(entry["name"]):
                assert "value" not in entry, f"{entry['name']} has a literal value"
                assert "secretKeyRef" in entry["valueFrom"], entry["name"]
        if resource["kind"] == "ConfigMap":
            for key, text in resource["data"].items():
                assert not SECRET_WORDS.search(key), key
                for line in text.splitlines():
                    if SECRET_WORDS.search(line) and not line.lstrip().startswith("#"):
                        assert "{{ env." in line, f"a secret-looking literal in {key}: {line}"
    for workload in (one("Job"), one("Deployment")):
        names = {e["name"] for e in _env_entries(workload)}
        assert "SHOP_TOKEN" in names, "the scenarios' documented secret must reach the pods"


# --- the image --------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_builds_on_the_official_locust_image_with_the_package():
    instructions = dockerfile_instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert len(froms) == 1
    image, _, tag = froms[0].partition(":")
    assert image == "locustio/locust"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), "pin a release tag"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    locust_req = next(d for d in pyproject["project"]["dependencies"] if d.startswith("locust"))
    assert Version(tag) in SpecifierSet(locust_req.removeprefix("locust")), (
        f"the image's Locust {tag} does not satisfy {locust_req}")
    copied = [shlex.split(rest)[:-1] for word, rest in instructions if word == "COPY"]
    sources = {src.rstrip("/") for group in copied for src in group}
    readme = pyproject["project"].get("readme")
    assert {"pyproject.toml", "shop_loadtest", readme} <= sources, sources
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert re.search(r"pip install [^&]*/tmp/shop-loadtest", runs)
    assert "import locust, shop_loadtest.runtime" in runs
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in {"root", "0"}, "the image must not run as root"
    entrypoint = next(rest for word, rest in instructions if word == "ENTRYPOINT")
    assert json.loads(entrypoint) == ["shop-loadtest"]
    # the build context's allow-list lets in everything the Dockerfile copies
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert sources <= allowed, sources - allowed


# --- the Helm chart route ---------------------------------------------------------------------

# The deliveryhero `locust` chart's value keys (chart 0.33.x values table) this file may set.
CHART_KEYS = {
    "loadtest": {"name", "locust_locustfile", "locust_locustfile_path",
                 "locust_locustfile_configmap", "locust_lib_configmap", "locust_host",
                 "pip_packages", "environment", "environment_secret",
                 "environment_external_secret", "mount_external_secret", "headless", "tags",
                 "excludeTags", "locustCmd", "enabled"},
    "image": {"repository", "tag", "pullPolicy"},
    "master": {"image", "logLevel", "resources", "args", "command", "environment",
               "envs_include_default", "restartPolicy", "nodeSelector", "tolerations",
               "affinity", "deploymentAnnotations", "serviceAccountAnnotations", "strategy",
               "pdb", "auth", "replicas", "livenessProbe", "readinessProbe", "startupProbe",
               "extraPorts"},
    "worker": {"image", "logLevel", "replicas", "hpa", "keda", "resources", "args", "command",
               "environment", "envs_include_default", "restartPolicy", "nodeSelector",
               "tolerations", "affinity", "deploymentAnnotations", "serviceAccountAnnotations",
               "strategy", "pdb"},
    "extraConfigMaps": None, "extraLabels": None, "extraObjects": None, "nodeSelector": None,
    "tolerations": None, "affinity": None, "imagePullSecrets": None, "podSecurityContext": None,
    "securityContext": None, "service": None, "ingress": None, "images": None,
    "locustfiles": None, "nameOverride": None, "fullnameOverride": None, "hostAliases": None,
}


def test_the_helm_values_use_the_charts_real_keys():
    values = helm_values()
    assert set(values) <= set(CHART_KEYS), set(values) - set(CHART_KEYS)
    for section, keys in CHART_KEYS.items():
        if keys is not None and section in values:
            assert set(values[section]) <= keys, (section, set(values[section]) - keys)
    loadtest = values["loadtest"]
    for key in ("name", "locust_locustfile", "locust_locustfile_configmap", "locust_host"):
        assert loadtest[key], key
    assert loadtest["headless"] is True
    assert values["image"]["repository"] and values["image"]["tag"]
    assert not values["worker"]["hpa"]["enabled"], "the worker count must stay fixed in a run"
    assert not loadtest.get("environment_secret"), "that key puts secret values in the values"
    assert loadtest["environment_external_secret"] == {"shop-loadtest-secrets": ["SHOP_TOKEN"]}
    assert not any(SECRET_WORDS.search(k) for k in loadtest["environment"] or {})


def test_the_helm_master_records_results_and_waits_for_every_worker():
    values = helm_values()
    args = dict((a.removeprefix("--").split("=", 1) + [""])[:2] for a in values["master"]["args"])
    assert args["slt-results"].startswith("/")
    assert int(args["expect-workers"]) == values["worker"]["replicas"]
    script = values["master"]["command"]
    assert script[:2] == ["sh", "-c"]
    assert 'sh /config/docker-entrypoint.sh "$@"' in script[2]
    assert script[2].rstrip().endswith("sleep infinity"), (
        "a headless master in a Deployment must not restart and replay the campaign")


# Parse the master's arguments with Locust's own parser once the generated locustfile is
# imported (it adds --slt-* then), as `locust` does; in a subprocess: locust patches gevent.
LOCUST_PARSE = """
import importlib.util, sys
import locust
from locust.argument_parser import parse_options
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("generated_locustfile", path)
spec.loader.exec_module(importlib.util.module_from_spec(spec))
options = parse_options(args=["-f", path, *sys.argv[2:]])
print(options.slt_results, options.expect_workers)
"""


def test_the_helm_master_args_are_options_of_the_generated_locustfile(tmp_path):
    values = helm_values()
    locustfile = tmp_path / values["loadtest"]["locust_locustfile"]
    locustfile.write_text(render(ROOT / "scenarios" / "flash-sale.yaml",
                                 source="scenarios/flash-sale.yaml",
                                 output=f"locustfiles/{locustfile.name}"))
    chart_args = ["--master", "--headless", f"--host={values['loadtest']['locust_host']}"]
    result = subprocess.run([sys.executable, "-c", LOCUST_PARSE, str(locustfile), *chart_args,
                             *values["master"]["args"]],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    results_dir, workers = result.stdout.splitlines()[-1].split()
    assert results_dir.startswith("/") and int(workers) == values["worker"]["replicas"]
    bad = subprocess.run([sys.executable, "-c", LOCUST_PARSE, str(locustfile), "--slt-resultz=x"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0, "the check must reject an option Locust does not have"


@pytest.mark.parametrize("scenario_file", scenarios_with_data(), ids=lambda p: p.stem)
def test_data_files_resolve_in_the_helm_layout(scenario_file):
    """`shop-loadtest generate` writes locustfiles/<name>.py; the chart mounts it at
    locust_locustfile_path, and the data ConfigMap where its relative paths point."""
    values = helm_values()
    base = values["loadtest"]["locust_locustfile_path"]
    source = render(scenario_file, source=f"scenarios/{scenario_file.name}",
                    output=f"locustfiles/{scenario_file.stem}.py")
    data_mounts = set(values["extraConfigMaps"].values())
    paths = here_paths(source)
    assert paths
    for relative in paths:
        resolved = posixpath.normpath(posixpath.join(base, relative))
        # user-class files (.py) go in the locustfile's own ConfigMap, data in the data one
        mounts = {base} if resolved.endswith(".py") else data_mounts
        assert posixpath.dirname(resolved) in mounts, resolved
