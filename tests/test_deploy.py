"""deploy/: the Dockerfile (a small hadolint-style lint), docker-compose.yml, the systemd unit, .env.example.

Docker is not available on our machines (at most a client without a daemon), so the image is never built
here: these tests check what can be checked without building it. `docker compose config` and
`systemd-analyze verify` run when the tools are installed and are skipped otherwise.
"""

from __future__ import annotations

import ast
import http.server
import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from bot.config import settings_from

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
UNIT = DEPLOY / "baocao.service"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

SETTING_RE = re.compile(r"^(?:(?:BAOCAO|TELEGRAM)_[A-Z0-9_]+|DATABASE_URL|SSL_CERT_(?:FILE|DIR))$")
SECRET_NAME_RE = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE", re.IGNORECASE)


# --- a small Dockerfile parser and lint --------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its (continuation-joined) arguments."""

    line: int
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, backslash continuations joined."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continuation is removed by Docker
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(p for p in pending if p)
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        pending = []
    if pending:
        raise ValueError(f"line {start}: unterminated continuation")
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The build stages, each starting with its FROM."""
    result: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            result.append([])
        if not result:
            if ins.keyword == "ARG":
                continue
            raise AssertionError(f"line {ins.line}: {ins.keyword} before the first FROM")
        result[-1].append(ins)
    return result


def _exec_form(args: str) -> list[str] | None:
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def lint_dockerfile(text: str) -> list[str]:
    """Problems found, as 'rule: message' lines (empty when the Dockerfile is fine)."""
    problems: list[str] = []
    instructions = parse_dockerfile(text)
    all_stages = stages(instructions)
    if not all_stages:
        return ["DL-FROM: no FROM"]
    aliases = set()
    for stage in all_stages:
        image, *rest = stage[0].args.split()
        if image.startswith("--platform"):
            image = rest[0]
        if image not in aliases and "@sha256:" not in image:
            name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
            if not tag:
                problems.append(f"DL3006: line {stage[0].line}: image {image!r} has no tag")
            elif tag == "latest":
                problems.append(f"DL3007: line {stage[0].line}: image {image!r} uses :latest")
        if " AS " in f" {stage[0].args.upper()} ":
            aliases.add(stage[0].args.split()[-1])
    for ins in instructions:
        if ins.keyword == "ADD":
            kind = "DL3020" if not re.search(r"https?://", ins.args) else "DL-ADD-URL"
            problems.append(f"{kind}: line {ins.line}: use COPY (or a checked download), not ADD")
        if ins.keyword == "WORKDIR" and not ins.args.startswith("/"):
            problems.append(f"DL3000: line {ins.line}: WORKDIR must be absolute")
        if ins.keyword == "RUN":
            commands = re.split(r"&&|;|\|\|", ins.args)
            if any(c.strip().startswith("cd ") for c in commands):
                problems.append(f"DL3003: line {ins.line}: use WORKDIR instead of cd")
            if re.search(r"\bsudo\b", ins.args):
                problems.append(f"DL3004: line {ins.line}: no sudo")
            if re.search(r"\bapt-get\s+(?:-\S+\s+)*install\b", ins.args):
                if "--no-install-recommends" not in ins.args:
                    problems.append(
                        f"DL3015: line {ins.line}: apt-get install without --no-install-recommends"
                    )
                if "rm -rf /var/lib/apt/lists" not in ins.args:
                    problems.append(f"DL3009: line {ins.line}: apt lists not removed in the same RUN")
            if re.search(r"\bapt\s+install\b", ins.args):
                problems.append(f"DL3027: line {ins.line}: use apt-get, not apt")
            pip = re.search(r"\bpip3?\s+install\b", ins.args)
            if pip and "--no-cache-dir" not in ins.args and "PIP_NO_CACHE_DIR" not in text:
                problems.append(f"DL3042: line {ins.line}: pip install without --no-cache-dir")
            if re.search(r"\b(curl|wget)\b[^|]*\|\s*(ba)?sh\b", ins.args):
                problems.append(f"DL-PIPE-SH: line {ins.line}: piping a download into a shell")
        if ins.keyword in ("ENV", "ARG"):
            for name in re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)", ins.args):
                if SECRET_NAME_RE.search(name):
                    problems.append(f"DL-SECRET: line {ins.line}: {ins.keyword} {name} bakes a secret in")
    final = all_stages[-1]
    users = [i for i in final if i.keyword == "USER"]
    run_points = [i for i in final if i.keyword in ("CMD", "ENTRYPOINT")]
    if not users:
        problems.append("DL3002: the final stage runs as root (no USER)")
    else:
        user = users[-1].args.split(":")[0]
        if user in ("root", "0"):
            problems.append(f"DL3002: line {users[-1].line}: last USER is root")
        if run_points and users[-1].line > min(i.line for i in run_points):
            problems.append("DL-USER-ORDER: USER must come before CMD/ENTRYPOINT")
    if not any(i.keyword == "HEALTHCHECK" for i in final):
        problems.append("DL-HEALTHCHECK: the final stage has no HEALTHCHECK")
    for ins in run_points:
        if _exec_form(ins.args) is None:
            problems.append(f"DL3025: line {ins.line}: use the JSON (exec) form for {ins.keyword}")
    for keyword in ("CMD", "ENTRYPOINT", "HEALTHCHECK"):
        if sum(1 for i in final if i.keyword == keyword) > 1:
            problems.append(f"DL4003/DL4004: more than one {keyword} in the final stage")
    return problems


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    """The parsed deploy/Dockerfile."""
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def test_dockerfile_passes_the_lint() -> None:
    assert lint_dockerfile(DOCKERFILE.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("snippet", "rule"),
    [
        ('FROM python\nUSER app\nHEALTHCHECK CMD true\nCMD ["x"]', "DL3006"),
        ('FROM python:latest\nUSER app\nHEALTHCHECK CMD true\nCMD ["x"]', "DL3007"),
        ('FROM python:3.11-slim\nHEALTHCHECK CMD true\nCMD ["x"]', "DL3002"),
        ('FROM python:3.11-slim\nUSER root\nHEALTHCHECK CMD true\nCMD ["x"]', "DL3002"),
        ('FROM python:3.11-slim\nCMD ["x"]\nUSER app\nHEALTHCHECK CMD true', "DL-USER-ORDER"),
        ('FROM python:3.11-slim\nUSER app\nCMD ["x"]', "DL-HEALTHCHECK"),
        (
            "FROM python:3.11-slim\nADD https://x.example/a.tgz /a\nUSER app\nHEALTHCHECK CMD true",
            "DL-ADD-URL",
        ),
        ("FROM python:3.11-slim\nADD . /src\nUSER app\nHEALTHCHECK CMD true", "DL3020"),
        (
            "FROM python:3.11-slim\nRUN apt-get update && apt-get install -y --no-install-recommends gcc\n"
            "USER app\nHEALTHCHECK CMD true",
            "DL3009",
        ),
        (
            "FROM python:3.11-slim\nRUN apt-get update \\\n && apt-get install -y gcc \\\n"
            " && rm -rf /var/lib/apt/lists/*\nUSER app\nHEALTHCHECK CMD true",
            "DL3015",
        ),
        ("FROM python:3.11-slim\nENV TELEGRAM_BOT_TOKEN=1:x\nUSER app\nHEALTHCHECK CMD true", "DL-SECRET"),
        ("FROM python:3.11-slim\nARG DB_PASSWORD\nUSER app\nHEALTHCHECK CMD true", "DL-SECRET"),
        ("FROM python:3.11-slim\nRUN pip install x\nUSER app\nHEALTHCHECK CMD true", "DL3042"),
        ("FROM python:3.11-slim\nRUN cd /x && make\nUSER app\nHEALTHCHECK CMD true", "DL3003"),
        ("FROM python:3.11-slim\nUSER app\nHEALTHCHECK CMD true\nCMD baocao serve", "DL3025"),
        ("FROM python:3.11-slim\nWORKDIR app\nUSER app\nHEALTHCHECK CMD true", "DL3000"),
    ],
)
def test_the_lint_catches(snippet: str, rule: str) -> None:
    assert any(p.startswith(rule) for p in lint_dockerfile(snippet)), lint_dockerfile(snippet)


def test_dockerfile_shape(dockerfile: list[Instruction]) -> None:
    final = stages(dockerfile)[-1]
    assert final[0].args.split()[0] == "python:3.11-slim"
    assert _exec_form(next(i for i in final if i.keyword == "ENTRYPOINT").args) == ["baocao"]
    assert _exec_form(next(i for i in final if i.keyword == "CMD").args) == ["serve"]
    user = next(i for i in final if i.keyword == "USER").args.split(":")[0]
    created = " ".join(i.args for i in final if i.keyword == "RUN")
    assert re.search(rf"useradd\b.*\b{re.escape(user)}\b", created), "the USER must be created in the image"
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    listen = re.search(r"BAOCAO_LISTEN=(\S+)", env)
    assert listen and listen.group(1).startswith("0.0.0.0:"), (
        "in a container the server must listen on 0.0.0.0"
    )
    port = listen.group(1).rsplit(":", 1)[1]
    assert any(i.keyword == "EXPOSE" and port in i.args.split() for i in final)
    assert not re.search(r"^\s*(ENV|ARG)\b.*TELEGRAM_BOT_TOKEN", DOCKERFILE.read_text("utf-8"), re.M)


def _healthcheck_command(dockerfile: list[Instruction]) -> str:
    args = next(i for i in dockerfile if i.keyword == "HEALTHCHECK").args
    _, _, command = args.partition("CMD ")
    return command.strip()


def test_healthcheck_uses_python_not_curl(dockerfile: list[Instruction]) -> None:
    command = _healthcheck_command(dockerfile)
    assert "/healthz" in command
    assert not re.search(r"\b(curl|wget)\b", command), "python:3.11-slim has neither curl nor wget"
    assert shlex.split(command)[:2] == ["python", "-c"]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    """A local HTTP server answering /healthz (200 unless its handler's status is changed)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    _Health.status = 200


def _run_healthcheck(command: str, env: dict[str, str]) -> int:
    code = shlex.split(command.split("||")[0])[2]
    return subprocess.run([sys.executable, "-c", code], env=env, timeout=30, capture_output=True).returncode


def test_healthcheck_command_really_probes_healthz(
    dockerfile: list[Instruction], health_server: http.server.HTTPServer
) -> None:
    command = _healthcheck_command(dockerfile)
    port = health_server.server_address[1]
    assert _run_healthcheck(command, {"BAOCAO_LISTEN": f"0.0.0.0:{port}"}) == 0
    # long polling in the container: `run` serves /healthz on BAOCAO_STATUS_LISTEN, which the probe prefers
    assert _run_healthcheck(command, {"BAOCAO_STATUS_LISTEN": f"0.0.0.0:{port}", "BAOCAO_LISTEN": ":1"}) == 0
    assert _run_healthcheck(command, {"BAOCAO_STATUS_LISTEN": "0.0.0.0:1", "BAOCAO_LISTEN": f":{port}"}) != 0
    _Health.status = 503
    assert _run_healthcheck(command, {"BAOCAO_LISTEN": f"0.0.0.0:{port}"}) != 0
    health_server.shutdown()
    health_server.server_close()
    assert _run_healthcheck(command, {"BAOCAO_LISTEN": f"0.0.0.0:{port}"}) != 0


# --- the build context: .dockerignore and COPY ----------------------------------------------------


def _ignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether a context-relative path is excluded: a pattern matches the path or a parent directory,
    the last matching pattern wins and `!` re-includes (Docker's rules, without Go's character classes)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            result = not negate
    return result


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    patterns = _ignore_patterns()
    for path in (".env", "deploy/.env", ".git/config", ".venv/bin/python", "baocao.db", "demo-data/x.db"):
        assert ignored(path, patterns), f"{path} would be sent into the build context"
    assert ignored("deploy/config/my-commune.yaml", patterns)


def test_everything_the_wheel_needs_is_copied_and_not_ignored(dockerfile: list[Instruction]) -> None:
    hatch = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]["build"]
    needed = set(hatch["targets"]["wheel"]["packages"]) | set(hatch["targets"]["wheel"]["force-include"])
    needed |= {"pyproject.toml", "README.md"}  # the project's metadata reads README.md
    build = stages(dockerfile)[0]
    copied = {
        src.rstrip("/").removeprefix("./")
        for i in build
        if i.keyword == "COPY" and not i.args.startswith("--from")
        for src in i.args.split()[:-1]
        if not src.startswith("--")
    }
    assert needed <= copied, f"not copied into the build stage: {sorted(needed - copied)}"
    patterns = _ignore_patterns()
    for path in sorted(copied):
        assert (ROOT / path).exists(), f"COPY {path}: no such path in the repository"
        assert not ignored(path, patterns), f"COPY {path} is excluded by .dockerignore"
    for path in ("bot/cli/__init__.py", "storage/migrations/env.py", "templates", "deploy/forms"):
        assert not ignored(path, patterns), path


def _pins() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in (DEPLOY / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = version
    return pins


def test_the_image_installs_pinned_versions_within_pyproject_ranges(dockerfile: list[Instruction]) -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    install = next(i.args for i in stages(dockerfile)[0] if i.keyword == "RUN" and "pip install" in i.args)
    assert "--constraint deploy/constraints.txt" in install
    pins = _pins()
    assert "baocao-thon" not in pins  # the package itself comes from the source
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for raw in project["dependencies"]:
        req = Requirement(raw)
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in deploy/constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"deploy/constraints.txt pins {req.name}=={pins[name]}, outside pyproject's {req.specifier}"
        )
        for extra in req.extras:  # psycopg[binary] needs psycopg-binary pinned too
            assert canonicalize_name(f"{req.name}-{extra}") in pins, f"{req.name}[{extra}] is not pinned"


def test_the_pins_are_not_stale(dockerfile: list[Instruction]) -> None:
    """Every pin is a package the image really installs (a removed dependency must leave the file)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.utils import canonicalize_name

    def closure(name: str, seen: set[str]) -> set[str]:
        from packaging.requirements import Requirement

        key = canonicalize_name(name)
        if key in seen:
            return seen
        seen.add(key)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            return seen
        for raw in requires:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                closure(req.name, seen)
        return seen

    needed = closure("baocao-thon", set()) - {"baocao-thon"}
    needed |= {"psycopg-binary"}  # psycopg[binary]'s extra
    stale = sorted(set(_pins()) - needed)
    assert not stale, f"pinned in deploy/constraints.txt but not installed by the package: {stale}"


# --- docker-compose.yml ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    """deploy/docker-compose.yml as data."""
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_services_and_database(compose: dict) -> None:
    services = compose["services"]
    assert {"db", "bot", "migrate"} <= set(services)
    db = services["db"]
    assert db["image"] == "postgres:15"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    mount = next(v for v in db["volumes"] if v.endswith(":/var/lib/postgresql/data"))
    volume = mount.split(":", 1)[0]
    assert volume in (compose.get("volumes") or {}), "the database volume must be a named volume"
    assert "POSTGRES_PASSWORD" in db["environment"]


def test_compose_bot(compose: dict) -> None:
    services = compose["services"]
    bot, migrate = services["bot"], services["migrate"]
    for svc in (bot, migrate):
        assert svc["env_file"] in (".env", [".env"])
        assert (COMPOSE.parent / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve() == DOCKERFILE
        assert (
            svc["environment"]["DATABASE_URL"].startswith("postgresql://")
            and "@db:5432/" in (svc["environment"]["DATABASE_URL"])
        )
    assert bot["command"] == ["serve"]
    assert migrate["command"] == ["db", "upgrade"], "migrations are applied before the bot starts"
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["restart"] in ("unless-stopped", "always", "on-failure")
    listen_port = bot["environment"]["BAOCAO_LISTEN"].rsplit(":", 1)[1]
    assert bot["environment"]["BAOCAO_LISTEN"].startswith("0.0.0.0:")
    published = [str(p) for p in bot["ports"]]
    assert all(p.startswith("127.0.0.1:") for p in published), "publish on localhost; TLS proxy in front"
    assert any(p.endswith(f":{listen_port}") for p in published)
    probe = bot["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "python", "-c"] and f":{listen_port}/healthz" in probe[3]
    compile(probe[3], "<compose healthcheck>", "exec")


def test_compose_variables_are_documented(compose: dict) -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text(encoding="utf-8")))
    assert used, "the compose file takes its password from deploy/.env"
    assert used <= set(_env_example()), f"not in .env.example: {sorted(used - set(_env_example()))}"


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.mark.skipif(not _docker_compose_available(), reason="`docker compose` (the plugin) is not installed")
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    shutil.copy(COMPOSE, deploy / "docker-compose.yml")
    shutil.copy(DOCKERFILE, deploy / "Dockerfile")
    env = ENV_EXAMPLE.read_text(encoding="utf-8").replace(
        "POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=abc123\n"
    )
    (deploy / ".env").write_text(env, encoding="utf-8")
    done = subprocess.run(
        ["docker", "compose", "-f", str(deploy / "docker-compose.yml"), "config", "--quiet"],
        cwd=deploy,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


# --- the systemd unit -----------------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values…]}} (keys may repeat, as systemd allows)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert current is not None and sep, f"line {number}: not 'Key=value' inside a section: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    """deploy/baocao.service, parsed."""
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def test_unit_runs_serve_as_a_dedicated_user(unit: dict[str, dict[str, list[str]]]) -> None:
    service = unit["Service"]
    assert unit["Unit"]["Description"] and "network-online.target" in unit["Unit"]["After"][0]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert service["User"][0] not in ("root", "0") and service["Group"][0] not in ("root", "0")
    assert service["EnvironmentFile"] == ["/etc/baocao/baocao.env"]
    assert service["ExecStart"][-1].split()[-1] == "serve"
    assert service["ExecStart"][-1].split()[0].endswith("/baocao")
    assert service["ExecStartPre"][-1].split()[1:] == ["db", "upgrade"]
    assert service["Restart"] == ["on-failure"]
    assert "baocao run" in UNIT.read_text(encoding="utf-8"), "document long polling as the alternative"


def test_unit_is_hardened(unit: dict[str, dict[str, list[str]]]) -> None:
    service = {k: v[-1] for k, v in unit["Service"].items()}
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert service.get(key) == value, f"{key}={service.get(key)!r}, want {value!r}"
    writable = service["ReadWritePaths"].split()
    assert service["WorkingDirectory"] in writable
    assert f"/var/lib/{service['StateDirectory']}" in writable
    sqlite = re.search(r"sqlite:///(/\S+)", UNIT.read_text(encoding="utf-8"))
    assert sqlite and str(Path(sqlite.group(1)).parent) in writable, "the SQLite directory must be writable"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart exists: point it at this checkout's console script.
    text = UNIT.read_text(encoding="utf-8")
    baocao = Path(sys.executable).with_name("baocao")
    if not baocao.exists():
        pytest.skip("the baocao console script is not installed next to this Python")
    copy = tmp_path / "baocao.service"
    copy.write_text(text.replace("/opt/baocao/bin/baocao", str(baocao)), encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "baocao.service" not in done.stderr, done.stderr


# --- .env.example --------------------------------------------------------------------------------


def _env_example() -> dict[str, str | None]:
    return dotenv_values(ENV_EXAMPLE)


def _documented_settings() -> set[str]:
    """Settings in .env.example: assigned, or shown commented out (`# NAME=…`) when setting one empty is harmful."""
    commented = re.findall(r"^# ?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M)
    return set(_env_example()) | set(commented)


def settings_read_by(path: Path) -> set[str]:
    """Environment variable names written as string constants in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SETTING_RE.match(node.value)
    }


def test_every_setting_in_config_is_documented() -> None:
    read = settings_read_by(ROOT / "bot" / "config.py")
    assert {"TELEGRAM_BOT_TOKEN", "DATABASE_URL", "BAOCAO_TIMEZONE"} <= read  # the extraction works
    missing = read - _documented_settings()
    assert not missing, f"document these in deploy/.env.example: {sorted(missing)}"


def test_every_setting_read_anywhere_is_documented() -> None:
    read = set().union(*(settings_read_by(p) for d in ("bot", "storage") for p in (ROOT / d).rglob("*.py")))
    missing = read - _documented_settings()
    assert not missing, f"document these in deploy/.env.example: {sorted(missing)}"


def test_webhook_settings_are_documented() -> None:
    names = set(_env_example())
    assert {"BAOCAO_WEBHOOK_URL", "BAOCAO_WEBHOOK_SECRET", "BAOCAO_LISTEN", "BAOCAO_LOG_FORMAT"} <= names


def test_each_setting_is_explained_in_vietnamese_and_english() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if not re.match(r"^(# ?)?[A-Z][A-Z0-9_]*=", line):
            continue
        comments: list[str] = []
        j = index - 1
        while j >= 0 and lines[j].startswith("#"):
            comments.append(lines[j])
            j -= 1
        name = line.split("=", 1)[0].lstrip("# ")
        assert comments, f"{name} has no comment above it"
        text = " ".join(comments)
        assert re.search(r"[ăâđêôơưạ-ỹ]", text), f"{name}: no Vietnamese explanation"
        assert re.search(r"\b(the|of|or|a|an|to|for|is)\b", text, re.I), f"{name}: no English explanation"


def test_example_holds_no_secrets_and_is_valid() -> None:
    values = _env_example()
    for name, value in values.items():
        if SECRET_NAME_RE.search(name):
            assert not value, f"{name} must be empty in the example"
    assert "CHANGE_ME" in (values["DATABASE_URL"] or "")
    settings = settings_from({k: v for k, v in values.items() if v is not None})
    assert settings.token is None and settings.database_url.startswith("postgresql+psycopg://")
