"""Flower started with the shipped flower.cfg: open on loopback, refused beyond it without credentials,
and with basic auth every page, its API and /metrics ask for them (the health check stays open)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from automation.flower_auth import FlowerAuthError, check_listening, is_loopback, listening_address
from tests.conftest import ROOT, answers_ok, free_port

pytestmark = pytest.mark.integration


def test_the_listening_address_and_who_may_listen_open() -> None:
    assert listening_address(["flower", "--address=0.0.0.0"], {"FLOWER_ADDRESS": "127.0.0.1"}) == "0.0.0.0"
    assert listening_address(["flower", "--address", "10.0.0.5"], {}) == "10.0.0.5"
    assert listening_address(["flower"], {"FLOWER_ADDRESS": "::"}) == "::"
    assert listening_address(["flower"], {}) == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("flower.example.com")
    check_listening("127.0.0.1", basic_auth=[], oauth="", environ={})
    check_listening("0.0.0.0", basic_auth=["ops:s3cret"], oauth="", environ={})
    check_listening("0.0.0.0", basic_auth=[], oauth=".*@example.com", environ={})
    check_listening("0.0.0.0", basic_auth=[], oauth="", environ={"FLOWER_ALLOW_UNAUTHENTICATED": "1"})
    with pytest.raises(FlowerAuthError) as refused:
        check_listening("", basic_auth=[], oauth="", environ={})
    assert "refusing to listen on every interface without authentication" in str(refused.value)


def _flower(port: int, *args: str, **env: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")} | env
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "automation", "flower", "--conf=flower.cfg", f"--port={port}",
         *args],
        cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


def test_flower_refuses_to_listen_beyond_loopback_without_credentials(database: None) -> None:
    port = free_port()
    process = _flower(port, "--address=0.0.0.0")
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        _stop(process)
    assert process.returncode != 0
    assert "refusing to listen on 0.0.0.0 without authentication" in output, output[-2000:]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2)


def test_with_basic_auth_the_dashboard_its_api_and_metrics_ask_for_credentials(database: None) -> None:
    port = free_port()
    process = _flower(port, "--address=0.0.0.0", FLOWER_BASIC_AUTH="ops:s3cret")
    base = f"http://127.0.0.1:{port}"
    try:
        assert answers_ok(f"{base}/healthcheck", process), "flower did not answer"
        for path in ("/", "/workers", "/api/workers", "/metrics"):
            assert httpx.get(base + path, timeout=5).status_code == 401, path
            wrong = httpx.get(base + path, timeout=5, auth=("ops", "wrong"))
            assert wrong.status_code == 401, path
        for path in ("/workers", "/metrics"):
            assert httpx.get(base + path, timeout=10, auth=("ops", "s3cret")).status_code == 200, path
        assert "flower_events_total" in httpx.get(f"{base}/metrics", timeout=10, auth=("ops", "s3cret")).text
    finally:
        _stop(process)
