"""docker-compose.yml stays valid and in step with the code it runs.

There is no Docker engine on the build machines, so the file is validated by
docker-compose's own parser, and what it passes to cxpulse (environment,
command lines) is fed to the real settings loader and CLI parser.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from cxpulse.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_is_valid_for_docker_compose() -> None:
    out = subprocess.run([str(ROOT / "scripts/check-compose")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_worker_environment_is_accepted_by_the_settings_loader() -> None:
    from cxpulse.settings import load_settings

    env = {k: str(v) for k, v in COMPOSE["services"]["worker-a"]["environment"].items()}
    # The image copies targets.yaml to /app (Dockerfile); here it is the repository's.
    assert env["CXPULSE_TARGETS_FILE"] == "/app/targets.yaml"
    assert "COPY targets.yaml ./" in (ROOT / "Dockerfile").read_text()
    env["CXPULSE_TARGETS_FILE"] = str(ROOT / "targets.yaml")
    settings = load_settings(env=env)
    assert settings.bootstrap_servers == "kafka:9092"
    assert settings.metrics_host == "0.0.0.0"  # inside the container network


def test_compose_commands_parse_with_the_cli() -> None:
    for name in ("worker-a", "worker-b", "exporter-a", "exporter-b", "simulator", "ingest",
                 "map"):
        command = COMPOSE["services"][name]["command"]
        args = build_parser().parse_args(command)
        assert callable(args.func), name


def test_compose_mounts_the_generated_rules_and_dashboards() -> None:
    mounts = [m.split(":")[0] for s in COMPOSE["services"].values() for m in s.get("volumes", [])]
    for path in ("./alerts/cxpulse-rules.yml", "./alerts/alertmanager.yml",
                 "./grafana/dashboards", "./grafana/provisioning"):
        assert path in mounts
        assert (ROOT / path).exists()


def test_prometheus_scrapes_every_worker_and_exporter_of_the_compose_file() -> None:
    """The scrape jobs the generated rules use, with every service of each kind."""
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus-compose.yml").read_text())
    jobs = {j["job_name"]: [t for c in j["static_configs"] for t in c["targets"]]
            for j in prom["scrape_configs"]}  # fmt: skip
    services = COMPOSE["services"]
    for job, kind in (("cxpulse-worker", "worker"), ("cxpulse-exporter", "exporter")):
        names = sorted(n for n, s in services.items() if s.get("command") == [kind])
        assert len(names) == 2, kind
        ports = {n: services[n]["environment"]["CXPULSE_METRICS_PORT"] for n in names}
        assert sorted(jobs[job]) == sorted(f"{n}:{ports[n]}" for n in names)


def test_gateway_and_map_environment_is_accepted_by_the_settings_loader() -> None:
    """Empty `${VAR:-}` secrets count as unset (the gateway then refuses that vendor)."""
    from cxpulse.helpdesks import load_mapping
    from cxpulse.settings import load_settings

    services = COMPOSE["services"]
    env = {k: "" if str(v).startswith("${") else str(v)
           for k, v in services["ingest"]["environment"].items()}  # fmt: skip
    ingest = load_settings(env=env)
    assert (ingest.ingest_host, ingest.ingest_port) == ("0.0.0.0", 8088)
    assert ingest.zendesk_webhook_secret is None
    assert "8088:8088" in services["ingest"]["ports"]
    env = {k: str(v) for k, v in services["map"]["environment"].items()}
    mount = next(m for m in services["map"]["volumes"] if m.endswith(":ro"))
    local, inside = mount.split(":")[:2]
    assert env["CXPULSE_MAPPING_FILE"] == inside
    env["CXPULSE_MAPPING_FILE"] = str(ROOT / local)
    settings = load_settings(env=env)
    load_mapping(settings.mapping_file)  # the shipped example is a valid mapping file
