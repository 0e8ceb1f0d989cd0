"""infra/k8s: objects valid for Kubernetes, wired to each other, probing /healthz, holding no secret."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from kubernetes_validate import ValidationError, validate

K8S = Path(__file__).parents[2] / "infra" / "k8s"
# The oldest and newest releases kubernetes-validate ships schemas for: the manifests must fit both.
KUBERNETES_VERSIONS = ["1.25.0", "1.37.0"]
SECRET_WORDS = re.compile(r"PASSWORD|TOKEN|SECRET|KEY", re.IGNORECASE)


def load_objects() -> dict[str, dict]:
    """Every Kubernetes object under infra/k8s by kind, the kustomization aside."""
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document["kind"] != "Kustomization":
                assert document["kind"] not in objects, f"two {document['kind']} objects"
                objects[document["kind"]] = document
    return objects


@pytest.fixture
def objects() -> dict[str, dict]:
    return load_objects()


@pytest.fixture
def pod(objects) -> dict:
    return objects["Deployment"]["spec"]["template"]


@pytest.fixture
def container(pod) -> dict:
    [container] = pod["spec"]["containers"]
    return container


def named_port(container: dict, port: int | str) -> int:
    return port if isinstance(port, int) else next(p["containerPort"] for p in container["ports"] if p["name"] == port)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kind", ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"])
def test_object_is_valid_kubernetes(objects, kind, version):
    validate(objects[kind], version, strict=True)


def test_the_kubernetes_check_has_teeth(objects):
    broken = copy.deepcopy(objects["Deployment"])
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/healthz"

    with pytest.raises(ValidationError, match="'pth' was unexpected"):
        validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_applies_every_object_file():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())

    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe"])
def test_probes_ask_healthz_on_handoffs_port(container, probe):
    check = container[probe]["httpGet"]

    assert check["path"] == "/healthz"
    assert named_port(container, check["port"]) == 3978


def test_deployment_selects_its_own_pods(objects, pod):
    assert objects["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_disruption_budget_keeps_one_pod_and_still_allows_a_drain(objects, pod):
    budget = objects["PodDisruptionBudget"]["spec"]

    assert budget["minAvailable"] == 1 < objects["Deployment"]["spec"]["replicas"]
    assert budget["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_service_reaches_the_pods_on_handoffs_port(objects, pod, container):
    service = objects["Service"]["spec"]

    assert service["selector"].items() <= pod["metadata"]["labels"].items()
    assert [named_port(container, p["targetPort"]) for p in service["ports"]] == [3978]


def test_runs_as_the_images_non_root_user(pod, container):
    dockerfile = (K8S.parent / "Dockerfile").read_text()
    [image_user] = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    security = pod["spec"]["securityContext"]

    assert security["runAsNonRoot"] is True
    assert (str(security["runAsUser"]), str(security["runAsGroup"])) == image_user
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_resources_are_requested_and_memory_is_capped(container):
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert "memory" in container["resources"]["limits"]


def test_routing_file_comes_from_the_configmap(objects, pod, container):
    routing = next(e["value"] for e in container["env"] if e["name"] == "HANDOFF_ROUTING")
    mount = next(m for m in container["volumeMounts"] if routing.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])

    assert volume["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    assert Path(routing).name in objects["ConfigMap"]["data"]


def test_secrets_are_referenced_never_written(objects, container):
    assert "Secret" not in objects
    assert [source["secretRef"]["name"] for source in container["envFrom"]] == ["handoff"]
    for variable in container.get("env", []):
        assert not SECRET_WORDS.search(variable["name"]), f"{variable['name']} belongs in the Secret"
