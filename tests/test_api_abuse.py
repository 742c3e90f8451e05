"""Abuse of the HTTP API on a real loopback server: DNS rebinding, cross-site writes, oversized
bodies and message arrays, key scopes on collections, revoked keys, and queue slots."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.api import KeyStore, create_app
from app.services import Services
from ingest import ingest_paths
from tests.shared import BOT, Server, free_port


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, real_embedder, model_pool) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("abuse") / "ws"
    (home / "assistants").mkdir(parents=True)
    (home / "assistants" / "alpha-bot.yaml").write_text(
        BOT.replace("harbor-bot", "alpha-bot").replace("[harbor]", "[alpha]")
    )
    (home / "assistants" / "beta-bot.yaml").write_text(
        BOT.replace("harbor-bot", "beta-bot").replace("[harbor]", "[beta]")
    )
    svc = Services.create(home, embedder=real_embedder, models=model_pool)  # the session's loaded model
    docs = tmp_path_factory.mktemp("abuse-docs")
    (docs / "a.txt").write_text("The alpha lighthouse lens is cleaned every Tuesday.")
    (docs / "b.txt").write_text("The beta harbor crane lifts twelve tonnes.")
    ingest_paths([docs / "a.txt"], "alpha", svc.store, svc.embedder)
    ingest_paths([docs / "b.txt"], "beta", svc.store, svc.embedder)
    keys = KeyStore(svc.store.engine)
    full, alpha = keys.create("full"), keys.create("alpha-only", ["alpha-bot"])
    app = create_app(svc, max_queue=2, allowed_hosts=["archivist.internal"])
    with Server(app, free_port()) as server:
        yield {"url": server.url, "full": full, "alpha": alpha, "svc": svc, "keys": keys}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_host_header_from_dns_rebinding_is_refused(site: dict) -> None:
    port = site["url"].rsplit(":", 1)[1]
    evil = httpx.get(site["url"] + "/v1/models", headers={**bearer(site["full"]), "Host": f"evil.example:{port}"})
    assert evil.status_code == 421 and "evil.example" in evil.json()["error"]["message"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "archivist.internal"):
        assert httpx.get(site["url"] + "/v1/models", headers={**bearer(site["full"]), "Host": host}).status_code == 200


def test_a_cross_site_upload_plants_nothing(site: dict) -> None:
    files = {"files": ("planted.txt", b"Planted instructions.", "text/plain")}
    port = int(site["url"].rsplit(":", 1)[1])
    other_port = {"Origin": f"http://127.0.0.1:{port + 1}"}  # another server on this machine (no Sec-Fetch-Site)
    for headers in (
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
        other_port,
        {"Origin": f"https://127.0.0.1:{port}"},
        {"Origin": "http://127.0.0.1:notaport"},
    ):
        r = httpx.post(
            site["url"] + "/v1/collections/alpha/documents", files=files, headers={**bearer(site["full"]), **headers}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
    assert "planted.txt" not in [d.name for d in site["svc"].store.documents("alpha")]
    same = {"Origin": site["url"]}  # the server's own origin (a page it served) may read and write
    assert httpx.get(site["url"] + "/v1/collections", headers={**bearer(site["full"]), **same}).status_code == 200
    search = site["url"] + "/v1/collections/alpha/search"
    assert httpx.post(search, json={"query": "lens"}, headers={**bearer(site["full"]), **same}).status_code == 200
    assert httpx.post(search, json={"query": "lens"}, headers={**bearer(site["full"]), **other_port}).status_code == 403


def test_oversized_bodies_are_refused_before_they_are_read(site: dict) -> None:
    big = {"model": "alpha-bot", "messages": [{"role": "user", "content": "x" * (9 * 2**20)}]}
    r = httpx.post(site["url"] + "/v1/chat/completions", json=big, headers=bearer(site["full"]))
    assert r.status_code == 413 and "8 MB" in r.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b'{"model": "alpha-bot", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 2**20
        yield b'"}]}'

    r = httpx.post(site["url"] + "/v1/chat/completions", content=chunks(), headers=bearer(site["full"]))
    assert r.status_code == 413


def test_huge_message_arrays_are_refused_cheaply(site: dict) -> None:
    many = {"model": "alpha-bot", "messages": [{"role": "user", "content": "hi"}] * 10_000}
    t0 = time.perf_counter()
    r = httpx.post(site["url"] + "/v1/chat/completions", json=many, headers=bearer(site["full"]))
    assert r.status_code == 400 and "1000" in json.dumps(r.json())
    wide = {"model": "alpha-bot", "messages": [{"role": "user", "content": "z" * 300_000}] * 8}
    r = httpx.post(site["url"] + "/v1/chat/completions", json=wide, headers=bearer(site["full"]))
    assert r.status_code == 400 and "2,000,000" in json.dumps(r.json())
    assert time.perf_counter() - t0 < 30  # generous: the point is no minutes of work


def test_a_key_for_one_assistant_reaches_only_its_collections(site: dict) -> None:
    h = bearer(site["alpha"])
    url = site["url"] + "/v1/collections"
    assert [c["name"] for c in httpx.get(url, headers=h).json()["data"]] == ["alpha"]
    assert httpx.post(url + "/alpha/search", json={"query": "lens"}, headers=h).status_code == 200
    for r in (
        httpx.get(url + "/beta/documents", headers=h),
        httpx.post(url + "/beta/search", json={"query": "crane"}, headers=h),
        httpx.post(url + "/beta/documents", files={"files": ("x.txt", b"Beta notes.", "text/plain")}, headers=h),
        httpx.delete(url + "/beta/documents/b.txt", headers=h),
    ):
        assert r.status_code == 403 and "beta" in r.json()["error"]["message"]
    assert [d.name for d in site["svc"].store.documents("beta")] == ["b.txt"]


def test_revoking_every_key_keeps_the_api_closed(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    svc = Services.create(tmp_path / "ws", embedder=real_embedder)
    keys = KeyStore(svc.store.engine)
    with Server(create_app(svc), free_port()) as server:
        assert httpx.get(server.url + "/v1/models").status_code == 200  # no key ever made: loopback is open
        secret = keys.create("only")
        assert httpx.get(server.url + "/v1/models").status_code == 401
        keys.revoke("only")
        r = httpx.get(server.url + "/v1/models", headers=bearer(secret))
        assert r.status_code == 401 and "every key is revoked" in r.json()["error"]["message"]
        assert httpx.get(server.url + "/v1/models").status_code == 401


@pytest.mark.slow
def test_queue_slots_are_taken_on_arrival_and_freed_when_clients_leave(site: dict) -> None:
    body = {
        "model": "alpha-bot",
        "messages": [{"role": "user", "content": "When is the lens cleaned?"}],
        "stream": True,
    }

    def one(_: int) -> int:
        with httpx.stream(
            "POST", site["url"] + "/v1/chat/completions", json=body, headers=bearer(site["full"]), timeout=300
        ) as r:
            for _line in r.iter_lines():
                pass
            return r.status_code

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(one, range(12)))
    assert codes.count(503) >= 6 and codes.count(200) >= 2, codes

    # clients that leave after the first piece give their slots back
    port = int(site["url"].rsplit(":", 1)[1])
    payload = json.dumps(body).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {site['full']}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    for _ in range(2):  # fill both slots, then hang up
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request)
        assert b"200 OK" in s.recv(4096)
        s.close()
    deadline = time.time() + 60
    while (code := one(0)) != 200 and time.time() < deadline:
        time.sleep(0.5)
    assert code == 200


def test_upload_names_lose_bidi_controls() -> None:
    from app.api.deps import safe_name

    assert safe_name("invoice\u202egpj.exe") == "invoicegpj.exe"
    assert safe_name("../../etc/\u2066passwd\u2069\n") == "passwd"


def test_collections_are_renamed_and_deleted_only_with_a_full_key_and_a_confirmation(
    site: dict, tmp_path: Path
) -> None:
    svc = site["svc"]
    (tmp_path / "g.txt").write_text("The gamma buoy blinks green every four seconds.")
    ingest_paths([tmp_path / "g.txt"], "gamma", svc.store, svc.embedder)
    url = site["url"] + "/v1/collections"
    scoped = bearer(site["alpha"])
    assert httpx.post(url + "/gamma/rename", json={"name": "delta"}, headers=scoped).status_code == 403
    r = httpx.post(url + "/gamma/rename", json={"name": "delta"}, headers=bearer(site["full"]))
    assert r.status_code == 200 and r.json()["name"] == "delta"
    assert httpx.post(url + "/alpha/rename", json={"name": "beta"}, headers=bearer(site["full"])).status_code == 409
    assert httpx.post(url + "/delta/rename", json={"name": "../x"}, headers=bearer(site["full"])).status_code == 400
    assert httpx.delete(url + "/delta", headers=bearer(site["full"])).status_code == 400  # no confirmation
    assert httpx.delete(url + "/delta?confirm=delta", headers=scoped).status_code == 403
    r = httpx.delete(url + "/delta?confirm=delta", headers=bearer(site["full"]))
    assert r.status_code == 200 and r.json() == {"deleted": "delta", "documents": 1}
    names = [c["name"] for c in httpx.get(url, headers=bearer(site["full"])).json()["data"]]
    assert "delta" not in names and "gamma" not in names and {"alpha", "beta"} <= set(names)
