"""docker-compose.yml validates: `docker compose config` where the compose plugin exists, and
always the Compose Specification JSON schema plus MAAM's own rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from tests.deploy.compose import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    REPO_ROOT,
    InterpolationError,
    interpolate,
    is_job,
    load,
    load_raw,
    read_env_file,
    service_profiles,
    variables,
)

MAAM_SERVICES = {"annotation": 50051, "dam": 8000, "ndd": 8008, "cmrr": 8007}
TRITON_SERVICES = ("triton", "triton-cpu")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load()


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def _compose_schema() -> dict:
    # check-jsonschema vendors the Compose Specification's schema (with its licence).
    path = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _mount(volume: str) -> tuple[str, str]:
    """(source, target) of a short-syntax mount, whose source may be `${VAR:-default}`."""
    match = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):([^:]+)(?::(?:ro|rw))?", volume)
    assert match, f"not a short-syntax mount: {volume!r}"
    return match[1], match[2]


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    return probe.returncode == 0


# --- the real tool, where it exists -------------------------------------------------------------


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    if not _docker_compose_available():
        pytest.skip("the docker CLI with the compose plugin is not installed; the schema tests below cover the file")
    for profile in ("gpu", "cpu", "tools", ""):
        command = ["docker", "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE)]
        if profile:
            command += ["--profile", profile]
        result = subprocess.run(
            [*command, "config", "--quiet"], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert result.returncode == 0, f"--profile {profile or '(none)'}: {result.stderr}"


# --- schema -----------------------------------------------------------------------------------


def test_the_file_matches_the_compose_specification(compose: dict) -> None:
    schema = _compose_schema()
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_broken_service(compose: dict) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["dam"]["restart"] = ["always"]  # must be a string
    broken["services"]["dam"]["healthcheck"]["intervall"] = "10s"  # unknown key
    errors = list(jsonschema.Draft202012Validator(_compose_schema()).iter_errors(broken))
    assert len(errors) >= 2


# --- variables --------------------------------------------------------------------------------


def test_every_variable_has_a_default_or_is_in_env_example() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    example = read_env_file()
    missing = sorted(
        {name for name, op in variables(text) if op not in (":-", "-") and name not in example}
    )
    assert not missing, f"add to .env.example or give a default: {missing}"


def test_required_secrets_fail_loudly_without_env() -> None:
    with pytest.raises(InterpolationError, match="POSTGRES_PASSWORD"):
        load(env={})


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $$HOME ${SET}", env) == "x d  d $HOME x"
    with pytest.raises(InterpolationError):
        interpolate("${EMPTY:?needed}", env)


def test_env_example_sets_a_profile_and_real_passwords() -> None:
    example = read_env_file()
    assert example["COMPOSE_PROFILES"] in ("gpu", "cpu")
    for key in ("POSTGRES_PASSWORD", "ELASTIC_PASSWORD", "MAAM_ELASTIC_PASSWORD"):
        # Passwords go into URLs and JSON bodies unescaped.
        assert re.fullmatch(r"[A-Za-z0-9_-]+", example[key]), key


# --- services ---------------------------------------------------------------------------------


def test_every_service_has_a_restart_policy_and_long_running_ones_a_healthcheck(services: dict) -> None:
    for name, service in services.items():
        assert service.get("restart"), f"{name}: no restart policy"
        if is_job(service):
            assert service["restart"] in ("no", "on-failure"), f"{name}: a one-shot job must not restart forever"
        else:
            test = (service.get("healthcheck") or {}).get("test")
            assert test and test != ["NONE"], f"{name}: no healthcheck"


def test_images_are_pinned_to_tags(services: dict) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: no image"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag and tag and tag != "latest", f"{name}: image {image!r} is not pinned"


def test_named_volumes_are_declared_and_used(compose: dict, services: dict) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for mount in service.get("volumes") or []:
            source = mount.split(":")[0] if isinstance(mount, str) else mount.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: volume {source!r} is not declared"
                used.add(source)
    assert declared == used, f"declared but unused: {sorted(declared - used)}"


def test_dependencies_exist_and_wait_for_health_or_completion(services: dict) -> None:
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec.get("condition")
            if is_job(services[target]):
                assert condition == "service_completed_successfully", f"{name} -> {target}"
            if service_profiles(services[target]) and not set(service_profiles(services[target])) & set(
                service_profiles(service)
            ):
                # A dependency that only exists under a profile must be optional for the others.
                assert spec.get("required") is False, f"{name} -> {target} needs required: false"


def test_maam_services_share_one_image_and_serve_on_their_port(services: dict) -> None:
    images = {services[name]["image"] for name in MAAM_SERVICES}
    assert len(images) == 1
    for name, port in MAAM_SERVICES.items():
        service = services[name]
        assert service["build"]["context"] == "."
        assert service["command"] == ["maam", "serve", name, "--host", "0.0.0.0", "--port", str(port)]
        assert any(str(p).endswith(f":{port}") for p in service["ports"]), f"{name}: port {port} not published"
        assert str(port) in " ".join(service["healthcheck"]["test"]), f"{name}: healthcheck probes another port"
        assert service.get("init") is True, f"{name}: needs an init so SIGTERM reaches the service"
        assert any(str(v).endswith(":/models:ro") for v in service["volumes"]), f"{name}: no model repository"


def test_services_are_wired_by_environment(services: dict) -> None:
    for name in MAAM_SERVICES:
        env = services[name]["environment"]
        assert env["MAAM_INFERENCE__TRITON_URL"] == "triton:8001"
        assert env["MAAM_INFERENCE__BACKEND"] == "triton"
        assert env["MAAM_MODEL_REPOSITORY"] == "/models"
    dam = services["dam"]["environment"]
    assert re.fullmatch(r"postgresql\+psycopg://maam:[^@]+@postgres:5432/maam", dam["MAAM_DAM__DATABASE_URL"])
    assert dam["MAAM_DAM__SEARCH_BACKEND"] == "elasticsearch"
    assert re.fullmatch(r"http://maam:[^@]+@elasticsearch:9200", dam["MAAM_DAM__ELASTICSEARCH_URL"])
    assert (dam["MAAM_ANNOTATION__HOST"], dam["MAAM_ANNOTATION__PORT"]) == ("annotation", "50051")
    assert services["ndd"]["environment"]["MAAM_NDD__ANNOTATION_URL"] == "annotation:50051"
    # The annotation service may fetch the DAM's signed blob links, and only those.
    trusted = json.loads(services["annotation"]["environment"]["MAAM_MEDIA__TRUSTED_URL_PREFIXES"])
    assert trusted == [dam["MAAM_DAM__URL"] + "/api/blobs/"]


def test_elasticsearch_is_secured_and_heap_sized(services: dict) -> None:
    env = services["elasticsearch"]["environment"]
    assert env["xpack.security.enabled"] == "true"
    assert env["ELASTIC_PASSWORD"] == read_env_file()["ELASTIC_PASSWORD"]
    heap = read_env_file()["ES_HEAP"]
    assert env["ES_JAVA_OPTS"] == f"-Xms{heap} -Xmx{heap}"
    # The healthcheck authenticates with the container's own variable, not a value baked into the file.
    assert "${ELASTIC_PASSWORD}" in " ".join(services["elasticsearch"]["healthcheck"]["test"])


def test_triton_serves_the_mounted_repository_and_only_the_gpu_profile_reserves_a_gpu(services: dict) -> None:
    raw = load_raw()["services"]
    for name in TRITON_SERVICES:
        service = services[name]
        command = service["command"]
        repository = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--model-repository="))
        assert "--model-control-mode=explicit" in command and "--load-model=*" in command
        mounts = dict(reversed(_mount(v)) for v in raw[name]["volumes"])
        assert mounts["/models"] == "${MAAM_MODELS_DIR:-./triton_models}", f"{name}: triton_models not mounted"
        assert repository in mounts, f"{name}: --model-repository={repository} is not a mount"
        # Healthy only when every installed model is loaded (deploy/triton/ready.py against this repository).
        health = service["healthcheck"]["test"]
        assert health[:3] == ["CMD", "python3", "/opt/maam/triton_ready.py"], f"{name}: {health}"
        assert health[health.index("--repository") + 1] == repository
        assert mounts["/opt/maam/triton_ready.py"] == "./deploy/triton/ready.py"
    for name, service in services.items():
        devices = (((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices")
        if "gpu" in service_profiles(service):
            assert devices and "gpu" in devices[0]["capabilities"], f"{name}: no GPU reservation"
        else:
            assert not devices, f"{name} reserves a GPU outside the gpu profile"
    assert service_profiles(services["triton"]) == ["gpu"]
    assert service_profiles(services["triton-cpu"]) == ["cpu"]
    # Either profile's server answers as triton:8001.
    assert "triton" in services["triton-cpu"]["networks"]["default"]["aliases"]


def test_the_cpu_profile_generates_its_repository_from_triton_models(services: dict) -> None:
    job = services["triton-cpu-repository"]
    assert job["command"][:2] == ["python", "/app/deploy/triton_cpu_repository.py"]
    source, dest = job["command"][2:4]
    assert f"{read_env_file()['MAAM_MODELS_DIR']}:{source}:ro" in job["volumes"]
    volume = next(_mount(v)[0] for v in job["volumes"] if _mount(v)[1] == dest)
    assert f"{volume}:/cpu-models:ro" in services["triton-cpu"]["volumes"]
    assert services["triton-cpu"]["depends_on"]["triton-cpu-repository"]["condition"] == (
        "service_completed_successfully"
    )


# --- the image --------------------------------------------------------------------------------


def _dockerfile() -> str:
    return (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_image_is_python_311_slim_non_root_and_installs_like_the_makefile() -> None:
    text = _dockerfile()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim[\w.-]*$", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"pip install \.", text)
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    rapidocr = re.search(r'pip install -q --no-deps ("rapidocr-onnxruntime[^"]*")', makefile)
    assert rapidocr, "the Makefile's rapidocr line moved; update this test and the Dockerfile together"
    assert f"pip install --no-deps {rapidocr.group(1)}" in text
    assert "COPY deploy /app/deploy" in text


def test_dockerignore_keeps_weights_venvs_and_secrets_out_of_the_context() -> None:
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "triton_models", ".env", "var", "**/.git"} <= ignored
    copied = re.findall(r"^COPY (?!--from)(\S+)", _dockerfile(), re.M)
    assert copied and not set(copied) & ignored, "the Dockerfile copies something .dockerignore drops"


def test_elasticsearch_setup_script_is_valid_sh() -> None:
    script = REPO_ROOT / "deploy" / "elasticsearch" / "setup.sh"
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_triton_ports_override_is_valid_and_publishes_grpc() -> None:
    override = load(path=REPO_ROOT / "deploy" / "triton-ports.yml")
    errors = list(jsonschema.Draft202012Validator(_compose_schema()).iter_errors(override))
    assert not errors, [e.message for e in errors]
    assert set(override["services"]) == {"triton"}
    assert override["services"]["triton"]["ports"] == ["127.0.0.1:8001:8001"]


def test_the_models_job_writes_as_the_host_user_and_says_what_to_set_when_it_cannot(services: dict) -> None:
    job = services["models"]
    assert job["user"] == "1000:1000"  # the defaults, which .env.example states
    env = read_env_file()
    assert (env["MAAM_UID"], env["MAAM_GID"]) == ("1000", "1000")
    raw = load_raw()["services"]["models"]
    assert raw["user"] == "${MAAM_UID:-1000}:${MAAM_GID:-1000}"
    shell, flag, script, name = job["entrypoint"]
    assert (shell, flag, name) == ("sh", "-c", "maam-models")
    assert "test -w /models" in script and "MAAM_UID=" in script and 'exec maam models "$@"' in script
    assert subprocess.run(["sh", "-n", "-c", script], capture_output=True).returncode == 0
    # Caches live under the repository it can write, not in the image's home of another uid.
    assert job["environment"]["HOME"].startswith("/models/.cache")
    assert job["environment"]["MAAM_DATA_DIR"].startswith("/models/.cache")


def test_elasticsearch_passwords_apply_on_every_start(services: dict) -> None:
    es = services["elasticsearch"]
    assert es["entrypoint"] == ["/bin/tini", "--", "/usr/local/bin/maam-es-entrypoint.sh"]
    assert "./deploy/elasticsearch/entrypoint.sh:/usr/local/bin/maam-es-entrypoint.sh:ro" in load_raw()[
        "services"]["elasticsearch"]["volumes"]
    entrypoint = (REPO_ROOT / "deploy" / "elasticsearch" / "entrypoint.sh").read_text(encoding="utf-8")
    assert "useradd maam_admin" in entrypoint and "docker-entrypoint.sh eswrapper" in entrypoint
    assert subprocess.run(["sh", "-n", str(REPO_ROOT / "deploy" / "elasticsearch" / "entrypoint.sh")]).returncode == 0
    health = " ".join(es["healthcheck"]["test"])
    assert "maam_admin:${ELASTIC_PASSWORD}" in health and "wait_for_status=green" in health
    setup = (REPO_ROOT / "deploy" / "elasticsearch" / "setup.sh").read_text(encoding="utf-8")
    assert "maam_admin:${ELASTIC_PASSWORD}" in setup and "elastic:${ELASTIC_PASSWORD}" not in setup
    # The DAM puts an index template and swaps aliases: its role may do both, on maam-* only.
    assert "manage_index_templates" in setup


def test_the_gpu_image_carries_onnxruntime_gpu_alone_with_its_cuda_runtime() -> None:
    text = _dockerfile()
    assert "pip uninstall -y onnxruntime onnxruntime-gpu" in text
    assert 'pip install --no-deps "onnxruntime-gpu==$version"' in text
    assert "CUDAExecutionProvider" in text and "ldconfig" in text
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    gpu = re.search(r"^gpu = \[(.*?)^\]", pyproject, re.M | re.S).group(1)
    assert '"onnxruntime-gpu[cuda,cudnn]>=1.20,<1.27"' in gpu  # the CUDA 12 line, with its runtime wheels
    assert re.search(r'"elasticsearch>=9\.\d+,<10"', pyproject), "the client must stay on the server's major"


def test_deployment_docs_state_the_versions_and_how_to_verify() -> None:
    docs = (REPO_ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    for needle in ("2.26", "570", "id -u", "docker compose ps", "MAAM_UID", "9.x"):
        assert needle in docs, f"docs/deployment.md does not say {needle!r}"
    assert "curl -X POST triton:8000" not in docs  # not reachable from the host


def test_ndd_and_cmrr_require_their_keys_and_the_dam_carries_them(services: dict) -> None:
    """Issue 20: NDD and CMRR answered anyone. Each gets its key from .env (required), the DAM gets both to send,
    and their healthchecks send the container's own key, or they would read 401 as unhealthy."""
    for name, variable in (("ndd", "MAAM_NDD__API_KEY"), ("cmrr", "MAAM_CMRR__API_KEY")):
        assert services[name]["environment"][variable] == services["dam"]["environment"][variable]
        assert services[name]["environment"][variable] == read_env_file()[variable]
        health = " ".join(services[name]["healthcheck"]["test"])
        assert f"'X-API-Key': os.environ['{variable}']" in health
    with pytest.raises(InterpolationError, match="MAAM_NDD__API_KEY"):
        load(env={k: v for k, v in read_env_file().items() if k != "MAAM_NDD__API_KEY"})
