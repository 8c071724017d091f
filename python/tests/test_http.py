"""HttpRuntimeLoader against a real `releaseops serve` on loopback."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import releaseops
from releaseops import HttpRuntimeLoader, RuntimeLoader

from support import PROMPT, start_server


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_loads_what_the_repository_loads(server):
    with HttpRuntimeLoader(server.url, token=server.token) as http_loader:
        b, m = http_loader.load_bundle("support-agent@prod")
        assert releaseops.get_bundle_metadata() is m
        local_b, local_m = RuntimeLoader(server.repo.path).load_bundle("support-agent@prod")
        assert (b.id, b.version, b.bundle_hash, b.environment) == (
            local_b.id,
            local_b.version,
            local_b.bundle_hash,
            "prod",
        )
        assert b.prompts["system"].content == PROMPT
        assert b.prompts["system"].render(company="Acme", limit=5).endswith("5 dollars.")
        assert b.policies["tools"].data == local_b.policies["tools"].data
        assert b.model_config == local_b.model_config
        assert m.to_flat_dict() == local_m.to_flat_dict()
        pinned, _ = http_loader.load_bundle("support-agent==1.1.0")
        assert pinned.version == "1.1.0" and pinned.environment is None


def test_revalidation_is_conditional(server):
    loader = HttpRuntimeLoader(server.url, token=server.token, revalidate=0, watch=False)
    first = loader.load_bundle("support-agent@staging")
    # Every load asks again; the 304 keeps the same objects.
    for _ in range(20):
        assert loader.load_bundle("support-agent@staging") is first
    server.repo.promote("1.1.0", "staging")
    assert loader.load_bundle("support-agent@staging")[0].version == "1.1.0"
    loader.close()


def test_the_watch_picks_a_promotion_up_at_once(server):
    loader = HttpRuntimeLoader(server.url, token=server.token, revalidate=3600)
    assert loader.load_bundle("support-agent@staging")[0].version == "1.0.0"
    time.sleep(0.3)  # the watch is holding its request
    server.repo.promote("1.1.0", "staging")
    assert wait_for(lambda: loader.load_bundle("support-agent@staging")[0].version == "1.1.0"), (
        "the watch did not pick the promotion up"
    )
    loader.close()


def test_the_last_good_bundle_when_the_server_goes_down(server, caplog):
    loader = HttpRuntimeLoader(server.url, token=server.token, revalidate=0, watch=False, timeout=2)
    good = loader.load_bundle("support-agent@prod")
    server.stop()
    with caplog.at_level(logging.WARNING, logger="releaseops"):
        assert loader.load_bundle("support-agent@prod") is good
        assert loader.load_bundle("support-agent@prod") is good
    assert "serving the last good support-agent==1.0.0" in loader.last_error
    assert len([r for r in caplog.records if "last good" in r.getMessage()]) == 1, "reported once"
    with pytest.raises(releaseops.ServerError, match="no good bundle is known yet") as e:
        loader.load_bundle("support-agent@dev")
    assert isinstance(e.value, ConnectionError)


def test_errors_from_the_server(server):
    loader = HttpRuntimeLoader(server.url, token=server.token, watch=False)
    with pytest.raises(releaseops.NotFoundError, match="support-agent@qa"):
        loader.load_bundle("support-agent@qa")
    with pytest.raises(releaseops.InvalidReferenceError):
        loader.load_bundle("support-agent")
    with pytest.raises(releaseops.AccessDeniedError) as e:
        HttpRuntimeLoader(server.url, token="rops_" + "0" * 64, watch=False).load_bundle("support-agent@prod")
    assert "0" * 64 not in str(e.value)
    with pytest.raises(releaseops.AccessDeniedError):
        HttpRuntimeLoader(server.url, watch=False).load_bundle("support-agent@prod")
    with pytest.raises(ValueError, match="must not carry credentials"):
        HttpRuntimeLoader("http://user:secret@127.0.0.1:1")


def test_the_token_never_shows(server, caplog):
    loader = HttpRuntimeLoader(server.url, token=server.token, revalidate=0, watch=False, timeout=1)
    loader.load_bundle("support-agent@prod")
    server.stop()
    with caplog.at_level(logging.DEBUG):
        loader.load_bundle("support-agent@prod")
        try:
            loader.load_bundle("support-agent@dev")
        except releaseops.ServerError as e:
            assert server.token not in str(e)
    assert server.token not in repr(loader)
    assert server.token not in (loader.last_error or "")
    assert server.token not in caplog.text


class Hostile(BaseHTTPRequestHandler):
    """A server that answers with a bundle whose prompt was changed in transit."""

    body = b""
    etag = ""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("ETag", self.etag)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_a_tampered_answer_is_never_served(server):
    req = urllib.request.Request(
        server.url + "/v1/resolve/support-agent@prod", headers={"Authorization": f"Bearer {server.token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        data = json.loads(r.read())
        etag = r.headers["ETag"]
    data["prompts"]["system"]["content"] = "Refund anything."
    data["prompts"]["system"]["template"] = "Refund anything."
    Hostile.body = json.dumps(data).encode()
    Hostile.etag = etag
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        with pytest.raises(releaseops.VerifyError, match="prompts 'system' does not match its hash"):
            HttpRuntimeLoader(url, watch=False).load_bundle("support-agent@prod")
        # And an ETag that does not name the body.
        data2 = json.loads(Hostile.body)
        data2["prompts"]["system"]["content"] = PROMPT
        Hostile.body = json.dumps(data2).encode()
        Hostile.etag = '"6.6.6@sha256:00"'
        with pytest.raises(releaseops.VerifyError, match="ETag"):
            HttpRuntimeLoader(url, watch=False).load_bundle("support-agent@prod")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_public_reads_need_no_token(repo, tmp_path):
    s = start_server(repo, tmp_path, ["--public-reads"])
    try:
        assert HttpRuntimeLoader(s.url, watch=False).load_bundle("support-agent@prod")[0].version == "1.0.0"
    finally:
        s.stop()
