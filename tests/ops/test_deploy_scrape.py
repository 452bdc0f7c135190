"""The shipped manifests' Prometheus scrape is authorised: deploy/kubernetes describes a scrape of
/metrics with a bearer token from a Secret, and atedash configured from that Secret answers that very
scrape (the pod's IP as Host, as Prometheus sends it) with the metrics, `atedash_store_up` among them.
"""

from pathlib import Path

import yaml
from django.test import Client

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def manifests():
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def one(kind, name=None):
    found = [d for d in manifests() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} in {DEPLOY}"
    return found[0]


def test_the_manifests_scrape_metrics_with_the_token_atedash_checks(ops_settings):
    monitor = one("ServiceMonitor")
    service = one("Service", "atedash")
    deployment = one("Deployment", "atedash")
    # The monitor selects the Service, whose named port reaches the container's.
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    # The token comes from the Secret the pods read ATEDASH_METRICS_TOKEN from (envFrom).
    secret_ref = endpoint["bearerTokenSecret"]
    assert secret_ref["key"] == "ATEDASH_METRICS_TOKEN"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env_from = {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}
    assert secret_ref["name"] in env_from
    token = one("Secret", secret_ref["name"])["stringData"]["ATEDASH_METRICS_TOKEN"]
    # No scrape annotation left that would send no token (it would get the login redirect).
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    assert not any(k.startswith("prometheus.io/") for k in annotations)

    ops_settings.ATEDASH_METRICS_TOKEN = token
    scrape = Client().get(
        endpoint.get("path", "/metrics"), HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="10.42.0.17:8000"
    )
    assert scrape.status_code == 200, scrape.content[:300]
    text = scrape.content.decode()
    assert "atedash_store_up 1.0" in text and "atedash_actors" in text
    # And without the token, the same scrape is not answered with metrics.
    assert Client().get("/metrics", HTTP_HOST="10.42.0.17:8000").status_code == 302


def test_store_up_is_zero_during_an_outage_and_readyz_stays_up(ops_settings):
    ops_settings.ATEDASH_METRICS_TOKEN = "t0ken"
    ops_settings.ATEDASH_REDIS_URL = "redis://127.0.0.1:1"  # nothing listens there
    ops_settings.ATEDASH_REDIS_CLUSTER = "no"
    scrape = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken")
    assert scrape.status_code == 200 and "atedash_store_up 0.0" in scrape.content.decode()
    ready = Client().get("/readyz", HTTP_HOST="10.42.0.17:8000")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
