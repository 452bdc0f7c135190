"""Shipped configuration that starts, and holds no accepted secret (issue 22, item 7, L2, info items).

The compose file and the Kubernetes manifests are read as written (YAML parsed, their environment
applied) and the dashboard's settings imported with them in a real process: with the secrets the
deployment generates they start; with the repository's placeholders they are refused. Docker cannot
run here, so the Dockerfile and the compose file are kept consistent by reading them."""

import ipaddress
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from atedash import settings as atedash_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBE = DEPLOY / "kubernetes"
# Settings values printed by the child process, to check what it read.
SHOW = (
    "import json, django; django.setup(); import atedash.wsgi; from django.conf import settings as s; "
    "print(json.dumps({'key': s.SECRET_KEY, 'token': s.ATEDASH_METRICS_TOKEN, 'url': s.ATEDASH_REDIS_URL,"
    " 'proxies': [str(n) for n in s.ATEDASH_TRUSTED_PROXIES]}))"
)


def clean_env(**values):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATEDASH_", "DJANGO_", "GUNICORN_"))}
    env.pop("PYTEST_VERSION", None)  # production settings, not the test ones
    env.update(DJANGO_SETTINGS_MODULE="atedash.settings", PYTHONPATH=str(REPO))
    env.update({k: str(v) for k, v in values.items()})
    return env


def start(env, code=SHOW):
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def started(result):
    import json

    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def refused(result, name):
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr, result.stderr[-2000:]


def repository_files():
    """Every text file under deploy/ and docs/."""
    for root in (DEPLOY, REPO / "docs"):
        for path in sorted(root.rglob("*")):
            if path.is_file():
                try:
                    yield path, path.read_text()
                except UnicodeDecodeError:
                    continue


# --- docker compose --------------------------------------------------------------------------------


def compose():
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def generate_compose_secrets(tmp_path):
    """Runs the compose file's `secrets` service as written, into a temporary directory for its volume."""
    service = compose()["services"]["secrets"]
    command = service["command"]
    assert command[:2] == ["python", "-c"]
    env = dict(os.environ, **service["environment"])
    env["ATEDASH_SECRETS_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", command[2]], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return service["environment"]["ATEDASH_SECRETS_DIR"]


def compose_env(tmp_path):
    """The atedash service's environment as written, its generated-secret paths mapped to tmp_path."""
    mount = generate_compose_secrets(tmp_path)
    env = {k: str(v) for k, v in compose()["services"]["atedash"]["environment"].items()}
    for name, value in env.items():
        if value.startswith(mount + "/"):
            env[name] = str(tmp_path / value.removeprefix(mount + "/"))
    env["ATEDASH_USERS_FILE"] = str(tmp_path / "operators.json")  # /app/var in the image
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prometheus")
    return env


@pytest.mark.process
def test_the_compose_file_starts_the_dashboard_with_secrets_it_generates(tmp_path):
    env = compose_env(tmp_path)
    values = started(start(clean_env(**env)))
    key, token = (tmp_path / "secret_key").read_text().strip(), (tmp_path / "metrics_token").read_text().strip()
    assert values["key"] == key and values["token"] == token and len(key) >= 50 and len(token) >= 32
    assert values["url"] == "redis://redis-1:6379"
    # A second start keeps them (sessions survive `docker compose up` again).
    generate_compose_secrets(tmp_path)
    assert (tmp_path / "secret_key").read_text().strip() == key
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o400"


def test_the_compose_file_holds_no_secret_and_its_volumes_match():
    doc = compose()
    app, gen = doc["services"]["atedash"], doc["services"]["secrets"]
    for name, value in app["environment"].items():
        if re.search("SECRET|TOKEN|PASSWORD", name):
            assert name.endswith("_FILE"), (name, value)
    assert not re.search(r"://[^/@\s]*:[^/@\s]*@", (DEPLOY / "docker-compose.yml").read_text())
    mount = gen["environment"]["ATEDASH_SECRETS_DIR"]
    volume = next(v for v in gen["volumes"] if v.endswith(":" + mount))
    assert f"{volume}:ro" in app["volumes"] and volume.split(":")[0] in doc["volumes"]
    assert app["depends_on"]["secrets"] == {"condition": "service_completed_successfully"}
    # The files belong to the image's runtime user.
    uid = re.search(r"useradd .*--uid (\d+)", (REPO / "Dockerfile").read_text()).group(1)
    assert f"os.chown(path, {uid}, {uid})" in gen["command"][2]
    # The operators file lives in the one directory the runtime user may write.
    assert app["environment"]["ATEDASH_USERS_FILE"] == "/app/var/operators.json"
    assert "install -d -o atedash -g atedash -m 0700 /app/var" in (REPO / "Dockerfile").read_text()
    # `redis-cli --cluster create` cannot hang the one-shot service.
    assert "timeout 60 redis-cli --cluster create" in doc["services"]["cluster-create"]["command"][0]


# --- Kubernetes ------------------------------------------------------------------------------------


def kube(name):
    return [d for d in yaml.safe_load_all((KUBE / name).read_text()) if d]


def kube_env(generated: bool):
    """ConfigMap + Secret + the Deployment's own env, as envFrom applies them; `generated`: the
    Secret's values as the README says to create them (random key and token, the store's password)."""
    env = dict(kube("configmap.yaml")[0]["data"])
    secret = next(d for d in kube("secret.yaml") if d["metadata"]["name"] == "atedash-secret")["stringData"]
    env.update(secret)
    container = kube("deployment.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    if generated:
        env["ATEDASH_SECRET_KEY"] = secrets.token_urlsafe(50)
        env["ATEDASH_METRICS_TOKEN"] = secrets.token_urlsafe(50)
        env["ATEDASH_REDIS_URL"] = env["ATEDASH_REDIS_URL"].replace(":replace-me@", f":{secrets.token_urlsafe(24)}@")
    return env


@pytest.mark.process
def test_the_kubernetes_environment_starts_with_generated_secrets(tmp_path):
    env = kube_env(generated=True) | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    values = started(start(clean_env(**env)))
    assert values["proxies"] == ["192.0.2.0/28"]
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.process
@pytest.mark.parametrize("name", ["ATEDASH_SECRET_KEY", "ATEDASH_METRICS_TOKEN", "ATEDASH_REDIS_URL"])
def test_each_placeholder_of_the_kubernetes_secret_is_refused(name, tmp_path):
    env = kube_env(generated=True) | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    env[name] = kube_env(generated=False)[name]
    refused(start(clean_env(**env)), name)


@pytest.mark.process
def test_the_kubernetes_secret_as_written_is_refused(tmp_path):
    refused(start(clean_env(**kube_env(generated=False))), "ATEDASH_")


def test_the_manifests_trust_only_narrow_proxies_and_ship_a_network_policy():
    data = kube("configmap.yaml")[0]["data"]
    assert data["GUNICORN_FORWARDED_ALLOW_IPS"] == data["ATEDASH_TRUSTED_PROXIES"]
    for item in data["ATEDASH_TRUSTED_PROXIES"].split(","):
        network = ipaddress.ip_network(item.strip())
        assert network.prefixlen >= 24, item
    for text in (path.read_text() for path in KUBE.glob("*.yaml")):
        assert "10.0.0.0/8" not in text and "0.0.0.0/0" not in text
    (policy,) = kube("networkpolicy.yaml")
    assert policy["kind"] == "NetworkPolicy"
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "atedash"}}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    rules = policy["spec"]["ingress"]
    assert len(rules) == 2
    for rule in rules:
        assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
        for peer in rule["from"]:  # a pod selector in a namespace: never every pod, never an ipBlock
            assert set(peer) == {"namespaceSelector", "podSelector"} and peer["podSelector"]["matchLabels"]
    names = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for r in rules for peer in r["from"]}
    assert names == {"ingress-nginx", "prometheus"}


@pytest.mark.process
@pytest.mark.parametrize("networks", ["10.0.0.0/8", "0.0.0.0/0", "172.16.0.0/12", "10.1.2.3/32,fd00::/8"])
def test_over_broad_trusted_proxies_are_refused(networks):
    env = clean_env(ATEDASH_SECRET_KEY=secrets.token_urlsafe(50), ATEDASH_TRUSTED_PROXIES=networks)
    refused(start(env), "ATEDASH_TRUSTED_PROXIES")


@pytest.mark.parametrize("networks", ["*", "10.0.0.0/8", "10.1.2.3,0.0.0.0/0", "fd00::/8", "nonsense"])
def test_gunicorn_refuses_over_broad_forwarded_allow_ips(networks, monkeypatch):
    import runpy

    monkeypatch.setenv("GUNICORN_FORWARDED_ALLOW_IPS", networks)
    with pytest.raises(SystemExit, match="GUNICORN_FORWARDED_ALLOW_IPS"):
        runpy.run_path(str(REPO / "atedash" / "gunicorn.conf.py"))


def test_gunicorn_takes_the_shipped_forwarded_allow_ips(monkeypatch):
    import runpy

    shipped = kube("configmap.yaml")[0]["data"]["GUNICORN_FORWARDED_ALLOW_IPS"]
    for value in (shipped, "127.0.0.1", "10.2.0.0/16,127.0.0.0/8"):
        monkeypatch.setenv("GUNICORN_FORWARDED_ALLOW_IPS", value)
        assert runpy.run_path(str(REPO / "atedash" / "gunicorn.conf.py"))["forwarded_allow_ips"] == value


@pytest.mark.process
def test_narrow_and_loopback_proxies_are_accepted():
    env = clean_env(ATEDASH_SECRET_KEY=secrets.token_urlsafe(50), ATEDASH_TRUSTED_PROXIES="10.2.0.0/16,127.0.0.0/8")
    assert started(start(env))["proxies"] == ["10.2.0.0/16", "127.0.0.0/8"]


# --- nothing in the repository is an accepted secret -----------------------------------------------

# name = value, name: value, --from-literal=NAME=value, and passwords in URLs.
ASSIGNMENT = re.compile(r"""[A-Z_]*(?:SECRET|TOKEN|PASSWORD|KEY)[A-Z_]*["']?\s*[:=]\s*["']?([^\s"'`,)]+)""")
URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s/]+)@")
LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=.]{32,}")


def candidates():
    found = set()
    for _path, text in repository_files():
        for pattern in (ASSIGNMENT, URL_PASSWORD, LONG_TOKEN):
            found.update(m.group(1) if pattern.groups else m.group(0) for m in pattern.finditer(text))
    # Commands and references are not values ($(...), ${VAR}, <...>).
    return sorted(v for v in found if not v.startswith(("$", "<", "{")))


def test_no_value_written_in_deploy_or_docs_is_an_accepted_secret():
    values = candidates()
    assert "replace-me-with-50-random-characters" in values and "replace-me-too" in values
    assert "compose-local-only-not-a-secret-change-me-0123456789" not in values  # the old compose key is gone
    accepted = []
    for value in values:
        for name, minimum in (("ATEDASH_SECRET_KEY", 50), ("ATEDASH_METRICS_TOKEN", 32)):
            try:
                atedash_settings._refuse_weak(name, value, minimum)
            except ImproperlyConfigured:
                continue
            accepted.append((name, value))
    assert not accepted


@pytest.mark.process
@pytest.mark.parametrize(
    "value",
    [
        "compose-local-only-not-a-secret-change-me-0123456789",  # the compose file's old key
        "replace-me-with-50-random-characters",
        "a" * 57,
        "ab" * 30,
        "abcd" * 16,
        "0123456789" * 6,
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    ],
)
def test_weak_or_known_secret_keys_are_refused_at_start(value):
    refused(start(clean_env(ATEDASH_SECRET_KEY=value)), "ATEDASH_SECRET_KEY")


def test_a_value_copied_from_the_repository_is_refused(monkeypatch, tmp_path):
    """A random-looking value is refused once a file of deploy/ or docs/ holds it (say, a real key
    pasted into an example): the check reads the files, not a list."""
    value = secrets.token_urlsafe(50)
    assert atedash_settings._refuse_weak("ATEDASH_SECRET_KEY", value, 50) == value
    for where in ("deploy/kubernetes/secret.yaml", "docs/configuration.md"):
        root = tmp_path / where.split("/")[0]
        (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / where).write_text(f'ATEDASH_SECRET_KEY: "{value}"\n')
        monkeypatch.setattr(atedash_settings, "BASE_DIR", tmp_path)
        with pytest.raises(ImproperlyConfigured, match="written in this repository"):
            atedash_settings._refuse_weak("ATEDASH_SECRET_KEY", value, 50)
        monkeypatch.undo()
        (tmp_path / where).unlink()
        assert root.exists()


def test_generated_secrets_are_accepted():
    for _ in range(200):
        for value, minimum in ((secrets.token_urlsafe(50), 50), (secrets.token_hex(16), 32)):
            assert atedash_settings._refuse_weak("X", value, minimum) == value


def test_the_redis_password_placeholder_is_refused():
    for url in ("redis://atedash:replace-me@redis:6379", "rediss://u:change-me@h:6380/0", "redis://:replace-me@h"):
        with pytest.raises(ImproperlyConfigured, match="placeholder password"):
            atedash_settings._refuse_placeholder_password("ATEDASH_REDIS_URL", url)
    ok = f"redis://atedash:{secrets.token_urlsafe(24)}@redis:6379"
    assert atedash_settings._refuse_placeholder_password("ATEDASH_REDIS_URL", ok) == ok
    assert atedash_settings._refuse_placeholder_password("ATEDASH_REDIS_URL", "redis://127.0.0.1:7100")


# --- the image --------------------------------------------------------------------------------------


def final_stage():
    text = (REPO / "Dockerfile").read_text()
    return text[text.rindex("\nFROM ") :]


def test_the_image_code_is_not_writable_by_its_runtime_user():
    stage = final_stage()
    user = re.findall(r"^USER\s+(\S+)", stage, re.M)
    assert user and user[-1] not in ("0", "root")
    # Every COPY of the final stage leaves the files to root ...
    for line in re.findall(r"^COPY .*$", stage, re.M):
        assert "--chown" not in line, line
    # ... with no write bit for others, and only var/ handed to the runtime user.
    assert "chmod -R go-w /app /opt/venv" in stage
    assert re.findall(r"-o atedash\b[^\n]*", stage) == ["-o atedash -g atedash -m 0700 /app/var"]
    assert stage.index("chmod -R go-w") < stage.index("USER ")
    # The Kubernetes Deployment runs as that user, read-only root filesystem.
    pod = kube("deployment.yaml")[0]["spec"]["template"]["spec"]
    uid = int(re.search(r"useradd .*--uid (\d+)", stage).group(1))
    assert pod["securityContext"]["runAsUser"] == uid and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_image_ships_what_the_repository_check_reads():
    text = (REPO / "Dockerfile").read_text()
    for name in ("deploy", "docs"):
        assert f"COPY {name} ./{name}" in text
    assert set(atedash_settings.REPOSITORY_TEXTS) >= {"deploy", "docs"}
