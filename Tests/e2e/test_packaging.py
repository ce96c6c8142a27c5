"""The container image definition and the Kubernetes manifests cannot be built or run here
(no container runtime, no cluster): keep every path, port, user, variable and probe in them
the same as the Debian package's (packaging/handrail.service, packaging/handrail.env), and
every variable one the README documents."""
import configparser
import re

import yaml

from conftest import ROOT

PACKAGING = ROOT / "packaging"


def package_settings():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string((PACKAGING / "handrail.service").read_text())
    env = dict(line.split("=", 1) for line in (PACKAGING / "handrail.env").read_text().splitlines()
               if line and not line.startswith("#"))
    return unit["Service"], env


def documented_variables():
    return set(re.findall(r"^\| `((?:HANDRAIL_[A-Z_]+)|DATABASE_URL)[`=]", (ROOT / "README.md").read_text(), re.M))


def test_the_image_runs_what_the_package_installs_where_it_installs_it():
    service, env = package_settings()
    binary = service["ExecStart"].split()[0]
    port = env["HANDRAIL_LISTEN"].rsplit(":", 1)[1]
    image = (PACKAGING / "Containerfile").read_text()
    final = image.split("\nFROM ")[-1]  # the runtime stage
    assert f'ENTRYPOINT ["{binary}"]' in final and 'CMD ["serve"]' in final
    assert f"USER {service['User']}" in final and f"WORKDIR {service['WorkingDirectory']}" in final
    assert f"HANDRAIL_DATA_DIR={env['HANDRAIL_DATA_DIR']}" in final
    assert f"HANDRAIL_LISTEN=0.0.0.0:{port}" in final and f"EXPOSE {port}" in final
    assert "/out/usr/share/handrail" in image, "the shipped files go where the package puts them"
    assert "libpq5" in final and "libcmark" in final and "swift" not in final.lower(), "runtime libraries only"
    for name in re.findall(r"\b(HANDRAIL_[A-Z_]+|DATABASE_URL)\b", image):
        assert name in documented_variables(), name


def test_the_manifests_use_the_packages_port_paths_probes_and_documented_variables():
    service, env = package_settings()
    port = int(env["HANDRAIL_LISTEN"].rsplit(":", 1)[1])
    docs = {d["kind"]: d for d in yaml.safe_load_all((PACKAGING / "kubernetes" / "handrail.yaml").read_text())}
    deployment = docs["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["serve"] and container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    variables = {e["name"]: e for e in container["env"]}
    assert variables["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == docs["Secret"]["metadata"]["name"]
    assert variables["HANDRAIL_DATA_DIR"]["value"] == env["HANDRAIL_DATA_DIR"] == container["volumeMounts"][0]["mountPath"]
    assert variables["HANDRAIL_LISTEN"]["value"].endswith(f":{port}")
    assert set(variables) <= documented_variables(), set(variables) - documented_variables()
    assert pod["terminationGracePeriodSeconds"] >= 10, "SIGTERM needs up to 10 s"
    assert docs["PodDisruptionBudget"]["spec"]["selector"] == deployment["spec"]["selector"]
    assert docs["Job"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == port
