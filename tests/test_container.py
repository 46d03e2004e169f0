"""The container files, checked without a Docker engine: the Dockerfile's
instructions, the health check command run for real, docker-compose.yml."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.gateway import Gateway
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in logical.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage (the image that ships)."""
    ins = instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in stage:
        if word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def healthcheck_argv() -> list[str]:
    (args,) = [a for w, a in runtime_stage() if w == "HEALTHCHECK"]
    argv: list[str] = json.loads(args[args.index("CMD") + 3 :])
    return argv


def test_dockerfile_is_multi_stage_on_slim_python_3_11() -> None:
    """A builder stage makes wheels; the runtime stage is python:3.11-slim and installs only those."""
    ins = instructions()
    froms = [a for w, a in ins if w == "FROM"]
    assert len(froms) >= 2 and froms[0].endswith("AS builder")
    assert any(w == "ARG" and a == "PYTHON_IMAGE=python:3.11-slim" for w, a in ins)
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    assert any(w == "RUN" and "pip wheel" in a for w, a in ins)
    runs = [a for w, a in runtime_stage() if w == "RUN"]
    assert any("--no-index" in a and "--find-links=/wheels" in a for a in runs)
    assert any("libmagic1" in a for a in runs)  # neonize → python-magic → libmagic


def test_runtime_runs_as_non_root_and_binds_all_interfaces() -> None:
    """USER is a non-root numeric uid; HOST=0.0.0.0, DATA_DIR on the volume, port 4010 exposed."""
    stage = runtime_stage()
    users = [a for w, a in stage if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = env_of(stage)
    assert env["HOST"] == "0.0.0.0"
    assert env["DATA_DIR"] == "/app/sessions"
    assert ("VOLUME", "/app/sessions") in stage
    assert ("EXPOSE", "4010") in stage
    assert ("CMD", '["wa-gateway"]') in stage
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["wa-gateway"] == "gateway.__main__:main"


@pytest.mark.live  # another process connects to its port
async def test_healthcheck_command_passes_on_a_live_gateway_and_fails_without_one(gw: Gateway) -> None:
    """The HEALTHCHECK's python one-liner exits 0 against /health and non-zero when nothing answers."""
    argv = healthcheck_argv()
    assert argv[0] == "python" and "urllib" in argv[2] and "/health" in argv[2]

    async def run(port: int) -> int:
        env = {**os.environ, "PORT": str(port)}
        proc = await asyncio.create_subprocess_exec(sys.executable, *argv[1:], env=env, stderr=subprocess.DEVNULL)
        return await proc.wait()

    assert await run(gw.settings.port) == 0
    assert await run(free_port()) != 0


def test_dockerignore_keeps_secrets_and_state_out_of_the_context() -> None:
    """.env, sessions, the venv and git never reach the build context."""
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", "sessions", ".venv", ".git"} <= ignored


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


def test_compose_runs_the_gateway_in_sandbox_with_a_webhook_receiver() -> None:
    """docker-compose.yml: the gateway (sandbox by default) on 4010 with its volume, and a receiver it posts to."""
    services = compose()["services"]
    assert {"gateway", "webhook-receiver"} <= set(services)
    gw = services["gateway"]
    assert gw["build"] == "."
    assert any(str(p).endswith(":4010") for p in gw["ports"])
    env = gw["environment"]
    assert env["WA_DRIVER"] == "${WA_DRIVER:-sandbox}"
    assert env["WEBHOOK_URL"].startswith("http://webhook-receiver:8080/")
    # No default key (issue 13 §8): empty unless the operator sets one, so the gateway generates its own.
    assert env["API_KEY"] == "${API_KEY:-}"
    assert any(v.endswith(":/app/sessions") for v in gw["volumes"])
    assert "sessions" in compose()["volumes"]
    script = services["webhook-receiver"]["command"][-1]
    compile(script, "receiver", "exec")  # the inline receiver is valid Python
    assert "8080" in script


def test_runtime_image_has_ffmpeg_for_media_conversion() -> None:
    """Voice notes, video and stickers are converted with Debian's ffmpeg (CONTRACT §11)."""
    runs = [a for w, a in runtime_stage() if w == "RUN"]
    assert any("apt-get install" in a and " ffmpeg" in a for a in runs)


def _test_deps_recipe() -> str:
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert "test: lint test-deps" in makefile
    return makefile.split("\ntest-deps:", 1)[1].split("\n\n", 1)[0]


def test_make_test_installs_ffmpeg() -> None:
    recipe = _test_deps_recipe()
    assert "command -v ffmpeg" in recipe and " ffmpeg" in recipe.split("apt-get install", 1)[1]


def test_make_test_installs_postgres_and_nats_when_absent() -> None:
    """A fresh machine without PostgreSQL or NATS gets Debian's, for throwaway servers (CONTRACT §14)."""
    recipe = _test_deps_recipe()
    checked = recipe.split("apt-get", 1)[0]
    assert "bin/initdb" in checked and "nats-server" in checked
    installed = recipe.split("apt-get install", 1)[1]
    assert " postgresql" in installed and " nats-server" in installed


def test_cluster_compose_runs_three_nodes_on_postgres_and_nats_behind_a_load_balancer() -> None:
    """docker-compose.cluster.yml (README "Running a cluster"): PostgreSQL, NATS with JetStream, three nodes
    started the same way (distinct NODE_IDs, one required API_KEY), nginx spreading HTTP and WebSockets."""
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    services = doc["services"]
    nodes = {name: s for name, s in services.items() if name.startswith("gateway-")}
    assert len(nodes) == 3 and {"postgres", "nats", "lb"} <= set(services)
    assert "-js" in services["nats"]["command"]
    env = [n["environment"] for n in nodes.values()]
    assert len({e["NODE_ID"] for e in env}) == 3
    for e, n in zip(env, nodes.values(), strict=True):
        assert e["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in e["DATABASE_URL"]
        assert "sslmode=disable" in e["DATABASE_URL"]  # neonize's lib/pq wants SSL otherwise (SCALE-OUT.md)
        assert e["BUS_URL"] == "nats://nats:4222"
        assert e["API_KEY"].startswith("${API_KEY:?")  # required, never a default
        assert n["build"] == "." and "/health/ready" in " ".join(n["healthcheck"]["test"])
        assert n["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert e["MEDIA_DIR"] == "/media" and "media:/media" in n["volumes"]  # one media volume for all
    assert "media" in doc["volumes"]
    lb = services["lb"]
    assert any(str(p).endswith(":4010") for p in lb["ports"]) and set(lb["depends_on"]) == set(nodes)
    conf = doc["configs"][lb["configs"][0]["source"]]["content"]
    for name in nodes:
        assert f"server {name}:4010" in conf
    assert "proxy_set_header Upgrade" in conf  # WebSockets pass through
