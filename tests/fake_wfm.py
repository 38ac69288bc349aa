"""A real local HTTP(S) server speaking the Webex WFO and CommunityWFM Cloud Connect endpoints gisgate uses.

It keeps sessions and tokens with expiry (on an injectable clock), parses multipart bodies with the
standard library's MIME parser, records every upload for the tests to inspect, and fails on demand:

    server.inject("/polling", status=500)              # next matching request answers 500
    server.inject("/api/upload", delay=2.0)            # ... answers after 2 s (client timeout)
    server.inject("/polling", expire_sessions=True)    # ... finds every session expired (401)
    server.inject("/polling", status=500, after=2)     # the third matching request answers 500
    server.inject("/CallVolume", success_false=True)   # ... answers 200 {"Success": false}
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
import re
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

WEBEX_UPLOADS = {
    "/api/rest/scheduling/agentstatehistorical/polling": "gis",
    "/api/upload/historicaldata": "whit",
    "/api/upload/contacts": "contact",
    "/api/upload/textcontacts": "textcontact",
    "/api/rest/scheduling/gis/realtimeagentstate": "rtstate",
}
CWFM_BULK = {
    "/api/ccc/people/bulkinsertpeople": ("AgentInserts", ("AgentId",)),
    "/api/ccc/collectionpoint/bulkinsertcollectionpoints": ("CollectionPointInserts", ("CollectionPointId",)),
    "/api/ccc/agentactivity/bulkinsertagentactivity": ("AgentUpdates", ("AgentId", "EventTime")),
    "/api/ccc/callvolume/bulkinsertcallvolume": ("CallVolumeUpdates", ("CollectionPoint", "Interval")),
}


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Upload:
    kind: str  # gis | whit | contact | textcontact | rtstate | people | collection_points | ...
    path: str
    query: dict[str, str]
    content_type: str
    parts: list[Part] = field(default_factory=list)
    body: object = None  # parsed JSON body
    at: float = field(default_factory=time.time)  # when it arrived (wall clock)


@dataclass
class Fault:
    match: str
    status: int | None = None
    delay: float = 0.0
    expire_sessions: bool = False
    success_false: bool = False
    body: str | None = None
    times: int = 1
    after: int = 0  # matching requests to let through before the fault strikes


@dataclass
class FakeClock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """Split a multipart/form-data body into its parts (name, filename, type, exact bytes)."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise ValueError("not a multipart body")
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None:
            raise ValueError("part without a name")
        parts.append(Part(name, part.get_filename(), part.get_content_type(), part.get_payload(decode=True)))
    return parts


class FakeWfm:
    """Start with `start()`, stop with `stop()`; `url` is the base URL."""

    def __init__(
        self,
        *,
        user: str = "svc@example.com",
        password: str = "s3cret-Pa55word!",
        tls: tuple[Path, Path] | None = None,
        clock=time.monotonic,
    ):
        self.user, self.password, self.clock = user, password, clock
        self.tls = tls  # (cert chain PEM, key PEM)
        self.session_idle_s = 7200.0
        self.token_ttl_s = 3600.0
        self.cwfm_login_paths = {"/api/ccs/auth/login", "/api/ccc/auth/login"}
        self.grant_types = {"string"}
        self.session_in_body = True  # False: the session id comes only as a Set-Cookie header
        self.tenant_id_as_string = False  # answer 400 to a numeric tenantId (the table says String)
        self.authorize_bodies: list[dict] = []
        self.sessions: dict[str, float] = {}  # session id -> last use
        self.tokens: dict[str, float] = {}  # bearer token -> expiry
        self.refresh_tokens: set[str] = set()
        self.issued: list[str] = []  # every session id and token ever handed out
        self.uploads: list[Upload] = []
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.logins = self.logouts = self.refreshes = 0
        self.rows: dict[str, dict[tuple, dict]] = {}  # cwfm table -> key -> record
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control ------------------------------------------------------------------------------------

    def inject(self, match: str, **kwargs) -> Fault:
        fault = Fault(match.lower(), **kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def expire_all(self) -> None:
        with self._lock:
            self.sessions.clear()
            self.tokens.clear()

    def uploads_of(self, kind: str) -> list[Upload]:
        return [u for u in self.uploads if u.kind == kind]

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeWfm:
        fake = self
        context = None
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request, client_address):
                if context is not None:  # handshake in the connection's own thread
                    try:
                        request = context.wrap_socket(request, server_side=True)
                    except (ssl.SSLError, OSError):
                        return
                super().finish_request(request, client_address)

            def handle_error(self, request, client_address):  # a client hanging up is not news
                pass

        class Handler(_Handler):
            server_state = fake

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # -- behaviour ----------------------------------------------------------------------------------

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.match in path and fault.times > 0:
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    fault.times -= 1
                    return fault
        return None

    def _new_secret(self, prefix: str) -> str:
        value = prefix + secrets.token_hex(16).upper()
        self.issued.append(value)
        return value


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeWfm
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms to each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing -----------------------------------------------------------------------------------

    def _reply(self, status: int, payload=None, headers: dict | None = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        fake = self.server_state
        url = urlsplit(self.path)
        path = url.path.rstrip("/").lower()  # ASP.NET and the WFO routes are case-insensitive here
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self._body()
        with fake._lock:
            fake.requests.append((method, url.path))
        fault = fake._take_fault(path)
        if fault:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.expire_sessions:
                fake.expire_all()
            if fault.status:
                return self._reply(fault.status, {"error": fault.body or "injected failure"})
            if fault.success_false:
                return self._reply(
                    200,
                    {
                        "Success": False,
                        "Message": fault.body or "injected failure",
                        "ExceptionResult": "Injected",
                        "Data": None,
                    },
                )
        if path.startswith("/api/rest/authorize"):
            return self._authorize(method, body)
        if path in WEBEX_UPLOADS and method == "POST":
            return self._webex_upload(WEBEX_UPLOADS[path], url.path, query, body)
        if path in fake.cwfm_login_paths and method == "POST":
            return self._cwfm_login(body)
        if path == "/api/ccc/auth/refreshtoken" and method == "POST":
            return self._cwfm_refresh(body)
        if path in CWFM_BULK and method == "POST":
            return self._cwfm_bulk(path, url.path, query, body)
        return self._reply(404, {"error": f"no route {method} {url.path}"})

    # -- Webex WFO ----------------------------------------------------------------------------------

    def _session(self) -> str | None:
        fake = self.server_state
        cookies = dict(
            c.strip().split("=", 1) for c in (self.headers.get("Cookie") or "").split(";") if "=" in c
        )
        sid = cookies.get("hazelcast.sessionId")
        with fake._lock:
            last = fake.sessions.get(sid)
            if last is None or fake.clock() - last > fake.session_idle_s:
                fake.sessions.pop(sid, None)
                return None
            fake.sessions[sid] = fake.clock()
        return sid

    def _authorize(self, method: str, body: bytes) -> None:
        fake = self.server_state
        if method == "DELETE":
            sid = self._session()
            if not sid:
                return self._reply(401, {"error": "no session"})
            with fake._lock:
                fake.sessions.pop(sid, None)
                fake.logouts += 1
            return self._reply(200, {"status": "logged out"})
        if method != "POST":
            return self._reply(405)
        try:
            request = json.loads(body)
        except ValueError:
            return self._reply(400, {"error": "malformed JSON"})
        fake.authorize_bodies.append({k: v for k, v in request.items() if k != "password"})
        if fake.tenant_id_as_string and not isinstance(request.get("tenantId", ""), str):
            return self._reply(400, {"error": "tenantId must be a string"})
        if not {"userId", "password", "language"} <= request.keys():
            return self._reply(400, {"error": "userId, password and language are required"})
        if request["userId"] != fake.user or request["password"] != fake.password:
            return self._reply(401, {"error": "invalid credentials"})
        sid = fake._new_secret("HZ")
        with fake._lock:
            fake.sessions[sid] = fake.clock()
            fake.logins += 1
        answer = {
            "sessionId": sid,
            "userId": 1001,
            "firstName": "Gis",
            "lastName": "Gate",
            "tenantId": 1,
            "timezoneString": "America/Chicago",
            "permissions": ["BULK_IMPORT"],
            "sessionTimeout": "60",
        }
        if not fake.session_in_body:
            answer.pop("sessionId")
        # Real servers set the cookie too; it must not leak into gisgate's DEBUG logs.
        return self._reply(200, answer, {"Set-Cookie": f"hazelcast.sessionId={sid}; Path=/; HttpOnly"})

    def _webex_upload(self, kind: str, raw_path: str, query: dict, body: bytes) -> None:
        fake = self.server_state
        if not self._session():
            return self._reply(401, {"error": "session expired or missing"})
        content_type = self.headers.get("Content-Type", "")
        upload = Upload(kind, raw_path, query, content_type)
        try:
            if content_type.startswith("multipart/form-data"):
                upload.parts = parse_multipart(content_type, body)
            elif content_type.startswith("application/json"):
                upload.body = json.loads(body)
            else:
                return self._reply(415, {"error": f"unsupported content type {content_type!r}"})
        except ValueError as e:
            return self._reply(400, {"error": f"malformed body: {e}"})
        if kind in ("gis", "whit", "rtstate") and not query.get("acdServerId", "").isdigit():
            return self._reply(400, {"error": "acdServerId is required"})
        if kind == "whit" and query.get("timeZone") not in ("UTC", "TENANT"):
            return self._reply(400, {"error": "timeZone must be UTC or TENANT"})
        if kind == "rtstate" and upload.parts:
            upload.body = json.loads(upload.parts[0].data)
        problem = _check_upload(kind, query, upload)
        if problem:
            return self._reply(400, {"error": problem})
        with fake._lock:
            fake.uploads.append(upload)
        return self._reply(200, {"status": "SUCCESS", "files": [p.filename for p in upload.parts]})

    # -- CommunityWFM Cloud Connect -----------------------------------------------------------------

    def _json(self, body: bytes):
        try:
            return json.loads(body)
        except ValueError:
            self._reply(400, {"Success": False, "Message": "malformed JSON"})
            return None

    def _tokens(self) -> dict:
        fake = self.server_state
        token, refresh = fake._new_secret("tok-"), fake._new_secret("ref-")
        with fake._lock:
            fake.tokens[token] = fake.clock() + fake.token_ttl_s
            fake.refresh_tokens.add(refresh)
        return {"Token": token, "RefreshToken": refresh}

    def _cwfm_login(self, body: bytes) -> None:
        fake = self.server_state
        request = self._json(body)
        if request is None:
            return
        if request.get("userName") != fake.user or request.get("password") != fake.password:
            return self._reply(
                200,
                {
                    "Success": False,
                    "ExceptionResult": None,
                    "Token": "",
                    "RefreshToken": "",
                    "Message": "Invalid user name or password",
                    "Data": None,
                },
            )
        fake.logins += 1
        return self._reply(
            200,
            {
                "Success": True,
                "ExceptionResult": None,
                **self._tokens(),
                "Message": "Successful FORMS Authentication",
                "Data": None,
            },
        )

    def _cwfm_refresh(self, body: bytes) -> None:
        fake = self.server_state
        request = self._json(body)
        if request is None:
            return
        if request.get("grant_type") not in fake.grant_types:
            return self._reply(400, {"Success": False, "Message": "unsupported grant_type"})
        with fake._lock:
            known = request.get("refresh_token") in fake.refresh_tokens
            fake.refresh_tokens.discard(request.get("refresh_token"))
        if not known:
            return self._reply(401, {"Success": False, "Message": "invalid refresh token"})
        fake.refreshes += 1
        # Refresh answers carry the new tokens under Data, with empty top-level ones (spec §4.2.2).
        return self._reply(
            200,
            {
                "Success": True,
                "ExceptionResult": None,
                "Token": "",
                "RefreshToken": "",
                "Message": "Token refreshed",
                "Data": self._tokens(),
            },
        )

    def _cwfm_bulk(self, path: str, raw_path: str, query: dict, body: bytes) -> None:
        fake = self.server_state
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        with fake._lock:
            expiry = fake.tokens.get(token)
        if not auth.startswith("Bearer ") or expiry is None or fake.clock() >= expiry:
            return self._reply(401, {"Message": "Authorization has been denied for this request."})
        request = self._json(body)
        if request is None:
            return
        list_key, key_fields = CWFM_BULK[path]
        records = request.get(list_key)
        if not isinstance(records, list) or "AccountId" not in request:
            return self._reply(400, {"Success": False, "Message": f"AccountId and {list_key} are required"})
        table = fake.rows.setdefault(list_key, {})
        with fake._lock:
            keys = [(request["AccountId"], *(r.get(k) for k in key_fields)) for r in records]
            duplicates = [
                k
                for k, r in zip(keys, records, strict=True)
                if k in table and str(r.get("UpdateExisting", "false")).lower() != "true"
            ]
            if duplicates:
                return self._reply(
                    200,
                    {
                        "Success": False,
                        "Data": None,
                        "ExceptionResult": "SqlException",
                        "Message": "Violation of PRIMARY KEY constraint. "
                        f"Cannot insert duplicate key {duplicates[0]}.",
                    },
                )
            table.update(zip(keys, records, strict=True))
            fake.uploads.append(Upload(list_key, raw_path, query, "application/json", body=request))
        return self._reply(
            200,
            {
                "Success": True,
                "ExceptionResult": None,
                "Message": f"{len(records)} rows",
                "Data": None,
                "Token": "",
                "RefreshToken": "",
            },
        )


GIS_NAME = re.compile(r"^\d{12}[NP]\d{4}_(\d+)_(AgentProductivity\.AGENT|ServiceHistorical\.SERVICE)$")


def _check_upload(kind: str, query: dict, upload: Upload) -> str | None:
    """What the WFO side would refuse in an upload, or None."""
    if kind == "gis":
        for part in upload.parts:
            m = GIS_NAME.match(part.filename or "")
            if not m:
                return f"not a GIS file name: {part.filename!r}"
            if m.group(1) != query["acdServerId"]:
                return f"{part.filename}: ACD {m.group(1)} differs from acdServerId={query['acdServerId']}"
    if kind == "rtstate":
        for state in upload.body if isinstance(upload.body, list) else [None]:
            if not (
                isinstance(state, dict)
                and isinstance(state.get("acdAgentId"), str)
                and isinstance(state.get("gisStateIdentifier"), str)
                and isinstance(state.get("timestamp"), int)
            ):
                return f"not a real-time agent state: {state!r}"
    if kind in ("contact", "textcontact"):
        names = {p.filename for p in upload.parts}
        data = next((p for p in upload.parts if (p.filename or "").lower().endswith(".csv")), None)
        if data is None:
            return "no contact CSV in the upload"
        column = "Recording1" if kind == "contact" else "filename"
        rows = csv.DictReader(io.StringIO(data.data.decode("utf-8-sig")))
        missing = [r[column] for r in rows if r.get(column) and r[column] not in names]
        if missing:
            return f"referenced file(s) not in the upload: {missing}"
    return None


def make_tls(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (PEM files in `directory`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("gisgate test CA"))
        .issuer_name(name("gisgate test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": directory / "ca.pem", "cert": directory / "server.pem", "key": directory / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths
