#!/usr/bin/env python3
"""ClamAV scanning for the messenger chart, in one file shipped as a ConfigMap.

Three uses, one clamd client:

* a Synapse module (``messenger_antivirus.ClamavScanner``) with the spam-checker callback
  ``check_media_file_for_spam``: every upload is streamed to clamd before it is stored;
* ``messenger_antivirus.py scan FILE``: the scan script of matrix-content-scanner (exit 0 clean,
  1 infected, 2 error);
* ``messenger_antivirus.py rescan``: the rescan Job, which scans media uploaded since a time
  and quarantines hits through Synapse's admin API.

clamd protocol (clamd(8), "INSTREAM"): ``zINSTREAM\\0``, then chunks each prefixed with their
length as a 4-byte big-endian integer, then a zero-length chunk; the reply is
``stream: OK``, ``stream: <signature> FOUND`` or ``... ERROR``. clamd closes the stream with
``INSTREAM size limit exceeded`` past its StreamMaxLength.

Standard library only (the content scanner's image has no extra packages); Synapse's own
modules are imported only by the Synapse module.
"""

import hashlib
import hmac
import json
import logging
import os
import socket
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

logger = logging.getLogger("messenger_antivirus")

CHUNK = 64 * 1024


class ClamdError(Exception):
    """clamd could not give a verdict (unreachable, timed out, size limit, error reply)."""


def _connect(host, port, timeout):
    try:
        return socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as e:
        raise ClamdError(f"clamd at {host}:{port} unreachable: {e}") from e


def _reply(sock):
    data = b""
    while not data.endswith(b"\0"):
        part = sock.recv(4096)
        if not part:
            break
        data += part
    return data.rstrip(b"\0").decode("utf-8", "replace").strip()


def command(host, port, word, timeout=5.0):
    """Sends a one-word clamd command (PING, VERSION, RELOAD) and returns the reply."""
    with _connect(host, port, timeout) as sock:
        try:
            sock.sendall(b"z" + word.encode() + b"\0")
            return _reply(sock)
        except OSError as e:
            raise ClamdError(f"clamd {word}: {e}") from e


def scan_chunks(host, port, chunks, timeout=60.0, max_length=None):
    """Streams ``chunks`` to clamd; returns None when clean, the signature name when infected.

    Raises ClamdError when there is no verdict, including a stream longer than ``max_length``
    (clamd's StreamMaxLength; without a verdict the caller decides, never "clean").
    """
    sent = 0
    with _connect(host, port, timeout) as sock:
        try:
            sock.sendall(b"zINSTREAM\0")
            for chunk in chunks:
                if not chunk:
                    continue
                sent += len(chunk)
                if max_length is not None and sent > max_length:
                    raise ClamdError(f"stream longer than clamd's StreamMaxLength ({max_length})")
                sock.sendall(struct.pack("!I", len(chunk)) + chunk)
            sock.sendall(struct.pack("!I", 0))
            reply = _reply(sock)
        except OSError as e:
            raise ClamdError(f"clamd INSTREAM: {e}") from e
    if reply.endswith("FOUND"):
        return reply[: -len("FOUND")].split(":", 1)[-1].strip()
    if reply.endswith("OK"):
        return None
    raise ClamdError(f"clamd answered {reply!r}")


def file_chunks(path):
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                return
            yield chunk


def signature_time(version_reply):
    """The time of the loaded daily database from a VERSION reply
    (``ClamAV 1.4.6/27000/Thu Dec  3 09:00:00 2026``), or None."""
    parts = version_reply.split("/", 2)
    if len(parts) < 3:
        return None
    try:
        return time.mktime(time.strptime(parts[2].strip(), "%a %b %d %H:%M:%S %Y"))
    except ValueError:
        return None


# Synapse module.


class ClamavScanner:
    """Synapse spam-checker module: uploads are scanned by clamd before they are stored.

    Config (the chart renders it from `antivirus`): ``clamd: {host, port}``, ``timeout``
    (seconds), ``fail_closed`` (reject uploads when clamd gives no verdict),
    ``stream_max_length`` (bytes, clamd's StreamMaxLength).
    """

    _metrics = None

    def __init__(self, config, api):
        self._config = config
        self._api = api
        self._metrics = ClamavScanner._shared_metrics()
        api.register_spam_checker_callbacks(check_media_file_for_spam=self.check_media_file_for_spam)
        api.looping_background_call(self._refresh_signature_age, 60_000)

    @staticmethod
    def parse_config(config):
        clamd = config.get("clamd") or {}
        if not clamd.get("host") or not clamd.get("port"):
            raise Exception("messenger_antivirus: clamd.host and clamd.port are required")
        return {
            "host": str(clamd["host"]),
            "port": int(clamd["port"]),
            "timeout": float(config.get("timeout", 60)),
            "fail_closed": bool(config.get("fail_closed", True)),
            "stream_max_length": config.get("stream_max_length"),
        }

    @classmethod
    def _shared_metrics(cls):
        # One set per process: Synapse serves prometheus_client's default registry.
        if cls._metrics is None:
            from prometheus_client import Counter, Gauge

            cls._metrics = {
                "scans": Counter(
                    "messenger_antivirus_scans_total", "Uploads scanned by clamd", ["result"]
                ),
                "detections": Counter(
                    "messenger_antivirus_detections_total",
                    "Uploads rejected as infected",
                    ["signature"],
                ),
                "failures": Counter(
                    "messenger_antivirus_failures_total",
                    "Uploads without a verdict (clamd unreachable or erroring)",
                    ["action"],
                ),
                "seconds": Counter(
                    "messenger_antivirus_scan_seconds_total", "Time spent scanning uploads"
                ),
                "age": Gauge(
                    "messenger_antivirus_signature_age_seconds",
                    "Age of clamd's daily signature database (-1: unknown)",
                ),
            }
            cls._metrics["age"].set(-1)
        return cls._metrics

    async def _refresh_signature_age(self):
        c = self._config
        try:
            reply = await self._api.defer_to_thread(command, c["host"], c["port"], "VERSION")
        except ClamdError:
            self._metrics["age"].set(-1)
            return
        built = signature_time(reply)
        self._metrics["age"].set(time.time() - built if built else -1)

    async def check_media_file_for_spam(self, file_wrapper, file_info):
        from synapse.api.errors import Codes
        from synapse.module_api import NOT_SPAM

        c = self._config
        media = getattr(file_info, "file_id", "?")
        start = time.monotonic()
        try:
            found = await self._api.defer_to_thread(
                scan_chunks,
                c["host"],
                c["port"],
                file_chunks(file_wrapper.path),
                c["timeout"],
                c["stream_max_length"],
            )
        except ClamdError as e:
            self._metrics["seconds"].inc(time.monotonic() - start)
            if c["fail_closed"]:
                self._metrics["failures"].labels("rejected").inc()
                logger.warning("antivirus: rejecting upload %s, no verdict: %s", media, e)
                return Codes.FORBIDDEN, {"error": "Antivirus scan unavailable"}
            self._metrics["failures"].labels("accepted").inc()
            logger.warning("antivirus: accepting upload %s unscanned (fail open): %s", media, e)
            return NOT_SPAM
        self._metrics["seconds"].inc(time.monotonic() - start)
        if found is None:
            self._metrics["scans"].labels("clean").inc()
            return NOT_SPAM
        self._metrics["scans"].labels("infected").inc()
        self._metrics["detections"].labels(found).inc()
        logger.warning("antivirus: rejected upload %s: infected with %s", media, found)
        return Codes.FORBIDDEN, {"error": f"Infected file: {found}"}


# Scan script (matrix-content-scanner) and rescan Job.


def _clamd_from_env():
    return (
        os.environ.get("CLAMD_HOST", "127.0.0.1"),
        int(os.environ.get("CLAMD_PORT", "3310")),
        float(os.environ.get("CLAMD_TIMEOUT", "60")),
        int(os.environ["CLAMD_STREAM_MAX"]) if os.environ.get("CLAMD_STREAM_MAX") else None,
    )


def scan_main(path):
    """Exit 0: clean, 1: infected, 2: no verdict (the scanner treats non-zero as not clean)."""
    host, port, timeout, max_length = _clamd_from_env()
    try:
        found = scan_chunks(host, port, file_chunks(path), timeout, max_length)
    except (ClamdError, OSError) as e:
        print(f"no verdict: {e}", file=sys.stderr)
        return 2
    if found:
        print(f"infected: {found}", file=sys.stderr)
        return 1
    return 0


class _Api:
    def __init__(self, base, token=None):
        self.base = base.rstrip("/")
        self.token = token

    def request(self, method, path, body=None, raw=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        response = urllib.request.urlopen(req, timeout=120)
        return response if raw else json.loads(response.read() or b"{}")


def _login(api, secret, user):
    """An admin token for ``user``: registered once with the shared secret, then logged in
    with a password derived from the same secret (no other credential to keep)."""
    password = hmac.new(secret.encode(), f"{user} password".encode(), hashlib.sha256).hexdigest()
    nonce = api.request("GET", "/_synapse/admin/v1/register")["nonce"]
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\0".join([nonce.encode(), user.encode(), password.encode(), b"admin"]))
    try:
        reply = api.request(
            "POST",
            "/_synapse/admin/v1/register",
            {"nonce": nonce, "username": user, "password": password, "admin": True,
             "mac": mac.hexdigest()},
        )
        return reply["access_token"]
    except urllib.error.HTTPError as e:
        if e.code != 400:
            raise
    reply = api.request(
        "POST",
        "/_matrix/client/v3/login",
        {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
         "password": password},
    )
    return reply["access_token"]


def _media_since(api, media_api, since_ms):
    """(user, media) of every local upload created at or after ``since_ms``: the users from
    main, their media from the media instance (which alone serves the media admin API)."""
    token = "0"
    while token is not None:
        page = api.request("GET", f"/_synapse/admin/v2/users?from={token}&limit=100&guests=false")
        for user in page.get("users", []):
            uid = urllib.parse.quote(user["name"])
            start = 0
            while True:
                media = media_api.request(
                    "GET",
                    f"/_synapse/admin/v1/users/{uid}/media"
                    f"?order_by=created_ts&dir=b&limit=100&from={start}",
                )
                items = media.get("media", [])
                for item in items:
                    if item.get("created_ts", 0) < since_ms:
                        items = []
                        break
                    yield user["name"], item
                if not items or media.get("next_token") is None:
                    break
                start = media["next_token"]
        token = page.get("next_token")


def rescan_main():
    """Rescans uploads since RESCAN_SINCE_MS (or now - RESCAN_LOOKBACK_SECONDS) and quarantines
    infected ones; one JSON line per action, a summary and Prometheus-format totals at the end.
    Exit 0 when every file got a verdict, 1 otherwise.

    SYNAPSE_URL: Synapse main (users, registration, login); MEDIA_URL: the media instance
    (media admin API, downloads, quarantine); SERVER_NAME; SECRETS_FILE (Synapse's
    secrets.yaml, for registration_shared_secret); CLAMD_HOST, CLAMD_PORT."""
    host, port, timeout, max_length = _clamd_from_env()
    base = os.environ["SYNAPSE_URL"]
    server = os.environ["SERVER_NAME"]
    user = os.environ.get("RESCAN_USER", "antivirus-rescan")
    secret = _read_secret(os.environ["SECRETS_FILE"])
    now_ms = int(time.time() * 1000)
    since_ms = int(os.environ.get("RESCAN_SINCE_MS") or 0) or now_ms - 1000 * int(
        os.environ.get("RESCAN_LOOKBACK_SECONDS", "2592000")
    )
    api = _Api(base)
    api.token = _login(api, secret, user)
    media_api = _Api(os.environ.get("MEDIA_URL") or base, api.token)
    counts = {"scanned": 0, "infected": 0, "quarantined": 0, "failed": 0}
    signatures = command(host, port, "VERSION", timeout)
    _log(event="start", since_ms=since_ms, clamd=signatures)
    for owner, item in _media_since(api, media_api, since_ms):
        media_id = item["media_id"]
        if item.get("quarantined_by"):
            continue
        try:
            response = media_api.request(
                "GET", f"/_matrix/client/v1/media/download/{server}/{media_id}", raw=True
            )
            found = scan_chunks(
                host, port, iter(lambda: response.read(CHUNK), b""), timeout, max_length
            )
        except (ClamdError, OSError) as e:
            counts["failed"] += 1
            _log(event="failed", media_id=media_id, user=owner, error=str(e))
            continue
        counts["scanned"] += 1
        if found is None:
            continue
        counts["infected"] += 1
        try:
            media_api.request(
                "POST", f"/_synapse/admin/v1/media/quarantine/{server}/{media_id}", {}
            )
        except (urllib.error.HTTPError, OSError) as e:
            counts["failed"] += 1
            detail = e.read().decode("utf-8", "replace") if hasattr(e, "read") else ""
            _log(event="quarantine failed", media_id=media_id, user=owner, signature=found,
                 error=f"{e} {detail}".strip())
            continue
        counts["quarantined"] += 1
        _log(event="quarantined", media_id=media_id, user=owner, signature=found)
    _log(event="done", **counts)
    for name, value in counts.items():
        print(f"messenger_antivirus_rescan_{name}_total {value}")
    print(f"messenger_antivirus_rescan_last_run_timestamp_seconds {now_ms // 1000}")
    return 1 if counts["failed"] else 0


def _read_secret(path):
    # secrets.yaml is flat `key: "value"` lines (the installer writes it); no YAML library
    # needed.
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "registration_shared_secret":
                return value.strip().strip("\"'")
    raise SystemExit(f"{path}: no registration_shared_secret")


def _log(**fields):
    print(json.dumps(fields, sort_keys=True), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "scan":
        sys.exit(scan_main(sys.argv[2]))
    if len(sys.argv) == 2 and sys.argv[1] == "rescan":
        sys.exit(rescan_main())
    if len(sys.argv) == 2 and not sys.argv[1].startswith("-"):
        # matrix-content-scanner calls its script with the file name alone.
        sys.exit(scan_main(sys.argv[1]))
    print("usage: messenger_antivirus.py [scan] FILE | rescan", file=sys.stderr)
    sys.exit(2)
