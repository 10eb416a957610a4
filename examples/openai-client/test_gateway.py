"""The official `openai` Python client against `imagegen serve` (on its embedded simulator).

Run by run.sh, which starts the gateway and passes:
  IMAGEGEN_GATEWAY_URL   the gateway's base URL, e.g. http://127.0.0.1:40123/v1
  IMAGEGEN_KEY           a gateway key with no budget limit
  IMAGEGEN_TIGHT_KEY     a gateway key whose budget covers one cheap image
  IMAGEGEN_BIN           the imagegen binary, for the gateways started here
  IMAGEGEN_WORK          a scratch directory (their ledgers, images and logs)
Exits non-zero on the first failed check, naming it.

Besides that gateway, it starts its own, each `imagegen serve` on loopback, stopped at
exit: one on the built-in simulator with `--max-in-flight-per-key 1` (the gateway's own
429), and one per upstream failure, whose KoalaImages is a fake provider served here
(`http.server`) that answers every request with that failure (503, 429 with Retry-After,
403, 402, or a connection closed after the request was read), so each error class of the
OpenAI clients is seen as the client raises it.
"""

import atexit
import signal
import base64
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
from openai import OpenAI

URL = os.environ["IMAGEGEN_GATEWAY_URL"]
KEY = os.environ["IMAGEGEN_KEY"]
TIGHT_KEY = os.environ["IMAGEGEN_TIGHT_KEY"]
BIN = os.environ["IMAGEGEN_BIN"]
WORK = os.environ["IMAGEGEN_WORK"]

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"


def image_bytes(data: bytes) -> bool:
    return data.startswith(PNG) or data.startswith(JPEG)


def check(name, condition, detail=""):
    if not condition:
        print(f"openai-client: FAIL {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"openai-client: ok   {name}")


def error_fields(error):
    """The OpenAI error object of an APIStatusError (the client's body is `error`'s value)."""
    return error.body if isinstance(error.body, dict) else {}


def header(error, name):
    return error.response.headers.get(name)


def expect_error(name, call, cls, status, code, kind=None):
    """Runs `call`, which must raise `cls` with `status` and `error.code` `code` (and
    `error.type` `kind` when given); returns the exception."""
    try:
        call()
    except cls as error:
        fields = error_fields(error)
        check(
            name,
            error.status_code == status
            and fields.get("code") == code
            and error.code == code
            and (kind is None or (fields.get("type") == kind and error.type == kind))
            and isinstance(fields.get("message"), str),
            (error.status_code, fields),
        )
        return error
    except openai.APIStatusError as error:
        check(name, False, f"{type(error).__name__} {error.status_code} {error_fields(error)}")
    except Exception as error:  # noqa: BLE001 - any other outcome is a failure to report
        check(name, False, f"{type(error).__name__}: {error}")
    check(name, False, "no error")


client = OpenAI(api_key=KEY, base_url=URL, max_retries=2)

# A URL served by the gateway itself.
result = client.images.generate(prompt="a lighthouse at dusk, watercolor", response_format="url")
check("url: one image", len(result.data) == 1, result)
with urllib.request.urlopen(result.data[0].url) as response:
    served = response.read()
    kind = response.headers.get("Content-Type", "")
check("url: the gateway serves the image", image_bytes(served) and kind.startswith("image/"), kind)

# The same bytes inline.
result = client.images.generate(prompt="a red fox in the snow", response_format="b64_json")
decoded = base64.b64decode(result.data[0].b64_json)
check("b64_json: an image", image_bytes(decoded), decoded[:16])

# n > 1 and a size.
result = client.images.generate(prompt="a koi pond from above", n=2, size="1536x1024")
check("n=2 with a size: two images", len(result.data) == 2, result)

# Input errors arrive as BadRequestError, naming the field; nothing is retried.
try:
    client.images.generate(prompt="a fox", size="banana")
    check("a bad size is refused", False, "no error")
except openai.BadRequestError as error:
    check("a bad size is a BadRequestError naming it", error.body is not None and error.body.get("param") == "size", error.body)

once = OpenAI(api_key=KEY, base_url=URL, max_retries=0)
error = expect_error(
    "a missing prompt is a BadRequestError (400 missing_required_parameter)",
    lambda: once.post("/images/generations", body={"n": 1}, cast_to=object),
    openai.BadRequestError, 400, "missing_required_parameter", "invalid_request_error",
)
check("a missing prompt names the param", error_fields(error).get("param") == "prompt", error_fields(error))

# An unknown model is a NotFoundError (404 model_not_found), for a generation and a lookup.
error = expect_error(
    "an unknown model is a NotFoundError (404 model_not_found)",
    lambda: once.images.generate(prompt="a fox", model="no-such-provider/no-such-model"),
    openai.NotFoundError, 404, "model_not_found", "invalid_request_error",
)
check("an unknown model names the param", error_fields(error).get("param") == "model", error_fields(error))
expect_error(
    "models.retrieve of an unknown model is a NotFoundError",
    lambda: once.models.retrieve("no-such-provider/no-such-model"),
    openai.NotFoundError, 404, "model_not_found",
)

# A wrong key is an AuthenticationError.
expect_error(
    "a wrong key is an AuthenticationError (401 invalid_api_key)",
    lambda: OpenAI(api_key="igk_" + "0" * 40, base_url=URL, max_retries=0).images.generate(prompt="a fox"),
    openai.AuthenticationError, 401, "invalid_api_key", "authentication_error",
)

# A key holder's spend is its own key's, never the whole ledger's.
mine = once.get("/spend", cast_to=object)
check(
    "spend for a key holder is what its key paid for (scope key)",
    isinstance(mine, dict) and mine.get("scope") == "key" and isinstance(mine.get("data"), list),
    mine,
)

# A budget running out: a 4xx the client does not retry, with code budget_exceeded.
tight = OpenAI(api_key=TIGHT_KEY, base_url=URL, max_retries=2)
tight.images.generate(prompt="one cheap image")
try:
    tight.images.generate(prompt="one image too many", n=4)
    check("an exhausted budget is refused", False, "no error")
except openai.APIStatusError as error:
    code = (error.body or {}).get("code")
    check("an exhausted budget is budget_exceeded", 400 <= error.status_code < 500 and code == "budget_exceeded", (error.status_code, error.body))

# The same Idempotency-Key twice: the first result again, charged once.
key = str(uuid.uuid4())
first = client.images.with_raw_response.generate(prompt="a heron at dawn", extra_headers={"Idempotency-Key": key})
second = client.images.with_raw_response.generate(prompt="a heron at dawn", extra_headers={"Idempotency-Key": key})
a, b = first.parse(), second.parse()
check("a repeated Idempotency-Key returns the first result", a.created == b.created and [d.url for d in a.data] == [d.url for d in b.data], (a, b))
ids_a = a.model_extra.get("imagegen", {}).get("generation_ids") if a.model_extra else None
ids_b = b.model_extra.get("imagegen", {}).get("generation_ids") if b.model_extra else None
check("a repeated Idempotency-Key is charged once", ids_a is not None and ids_a == ids_b, (ids_a, ids_b))
# The same key for another request: an UnprocessableEntityError, nothing run.
expect_error(
    "an Idempotency-Key reused for another request is an UnprocessableEntityError (422)",
    lambda: once.images.generate(prompt="a heron at noon", extra_headers={"Idempotency-Key": key}),
    openai.UnprocessableEntityError, 422, "idempotency_key_reused",
)

# The model list, in OpenAI's shape.
models = client.models.list()
ids = [m.id for m in models.data]
check("models: provider/model ids", len(ids) > 0 and all("/" in i for i in ids), ids[:3])


# ---------------------------------------------------------------------------------------
# Gateways of their own: the in-flight limit, and upstream failures from a fake provider.

FAKE_KOALA_KEY = "fake-koala-key-for-the-openai-client-check"
FAILURES = {
    # mode: (status, extra headers); "hangup" reads the request and closes the connection.
    "unavailable": (503, {}),
    "ratelimited": (429, {"Retry-After": "1"}),
    "plan": (403, {}),
    "credits": (402, {}),
    "hangup": (None, {}),
}
posts = {mode: 0 for mode in FAILURES}
posts_lock = threading.Lock()


class FakeProvider(BaseHTTPRequestHandler):
    """KoalaImages failing as the first path segment says (`/<mode>/api/...`)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        mode = self.path.strip("/").split("/")[0]
        if mode not in FAILURES:
            self.send_error(404)
            return
        if self.command == "POST":
            with posts_lock:
                posts[mode] += 1
        status, headers = FAILURES[mode]
        if status is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = json.dumps({"error": f"fake {mode}", "message": f"fake provider: {mode}"}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer


fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeProvider)
fake.daemon_threads = True
threading.Thread(target=fake.serve_forever, daemon=True).start()
fake_port = fake.server_address[1]

gateways = []


def stop_gateways():
    for process, _ in gateways:
        if process.poll() is None:
            process.terminate()
    for process, _ in gateways:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


atexit.register(stop_gateways)
# run.sh's `timeout` sends SIGTERM: exit through atexit, so no gateway outlives the check.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def start_gateway(name, env, *flags):
    """Starts `imagegen serve` on a free loopback port with its own ledger; returns it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KOLBO_", "KOALA_"))} | env
    log = open(os.path.join(WORK, f"{name}.err"), "wb")
    process = subprocess.Popen(
        [BIN, "--db", os.path.join(WORK, f"{name}.sqlite3"), "serve", "--listen", "127.0.0.1:0",
         "--image-dir", os.path.join(WORK, f"{name}-images"), *flags],
        cwd=WORK, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
    )
    gateways.append((process, name))
    return process


def gateway_url(process, name):
    """The base URL `listening on http://ADDR` names, waiting at most 30 s."""
    deadline = time.monotonic() + 30
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(process.stdout.fileno(), 1)
            if not chunk:
                break
            line += chunk
    text = line.decode(errors="replace").strip()
    if not text.startswith("listening on http://"):
        with open(os.path.join(WORK, f"{name}.err"), errors="replace") as err:
            sys.stderr.write(err.read())
        check(f"gateway {name} starts", False, text or f"exit {process.poll()}")
    return text.split()[2] + "/v1"


def upstream_env(mode):
    return {"KOALA_API_KEY": FAKE_KOALA_KEY, "KOALA_BASE_URL": f"http://127.0.0.1:{fake_port}/{mode}/api"}


started = {"limited": start_gateway("limited", {}, "--max-in-flight-per-key", "1")}
for mode in FAILURES:
    started[mode] = start_gateway(mode, upstream_env(mode))
urls = {name: gateway_url(process, name) for name, process in started.items()}


def failing(mode, retries=0):
    # No gateway keys in these ledgers: loopback callers need none (the client wants one).
    return OpenAI(api_key="unused", base_url=urls[mode], max_retries=retries)


def may_retry(error):
    return header(error, "x-should-retry") != "false"


# 5xx: the provider unavailable (503) is the gateway's upstream failing: 502, an
# InternalServerError, nothing charged, so the client may retry.
error = expect_error(
    "an unavailable provider is an InternalServerError (502 provider_error)",
    lambda: failing("unavailable").images.generate(prompt="a fox"),
    openai.InternalServerError, 502, "provider_error", "server_error",
)
check("an unavailable provider: nothing charged, x-should-retry is not false", may_retry(error), dict(error.response.headers))
check("an unavailable provider: the request reached it", posts["unavailable"] >= 1, posts)

# 429 upstream: a RateLimitError carrying the provider's Retry-After (the gateway waited
# it out itself first); nothing charged, so the client may retry after it.
started_at = time.monotonic()
error = expect_error(
    "a rate-limited provider is a RateLimitError (429 rate_limit_exceeded)",
    lambda: failing("ratelimited").images.generate(prompt="a fox"),
    openai.RateLimitError, 429, "rate_limit_exceeded", "requests",
)
check("a rate-limited provider: Retry-After is the provider's", header(error, "retry-after") == "1", dict(error.response.headers))
check("a rate-limited provider: x-should-retry is not false", may_retry(error), dict(error.response.headers))
check("a rate-limited provider: the gateway honoured Retry-After before answering", time.monotonic() - started_at >= 1.0 and posts["ratelimited"] >= 2, posts)

# 403 upstream (a plan the account lacks): a PermissionDeniedError naming the model.
error = expect_error(
    "a plan the provider refuses is a PermissionDeniedError (403 plan_required)",
    lambda: failing("plan").images.generate(prompt="a fox"),
    openai.PermissionDeniedError, 403, "plan_required", "permission_error",
)
check("plan_required names the param", error_fields(error).get("param") == "model", error_fields(error))


def posts_for(mode, call):
    """The POSTs the fake provider got in `mode` while `call` ran (errors swallowed)."""
    before = posts[mode]
    try:
        call()
    except openai.APIStatusError:
        pass
    return posts[mode] - before


# The provider out of credits (402): a RateLimitError with code insufficient_quota that
# is never retried: x-should-retry false. The client here may retry twice, and would then
# have ended on the 503 below: that it raises the 429 shows it obeyed.
before = posts["credits"]
error = expect_error(
    "a provider out of credits is a RateLimitError (429 insufficient_quota)",
    lambda: failing("credits", retries=2).images.generate(prompt="a fox"),
    openai.RateLimitError, 429, "insufficient_quota", "insufficient_quota",
)
check("insufficient_quota: x-should-retry false", header(error, "x-should-retry") == "false", dict(error.response.headers))
check("insufficient_quota: the client does not retry it (one POST upstream)", posts["credits"] - before == 1, posts)
# That provider is then out for the gateway's run: no model is left for now, a 503.
before = posts["credits"]
expect_error(
    "no provider left for now is an InternalServerError (503 providers_unavailable)",
    lambda: failing("credits").images.generate(prompt="a fox"),
    openai.InternalServerError, 503, "providers_unavailable", "server_error",
)
check("providers_unavailable: nothing sent upstream", posts["credits"] == before, posts)

# The connection closed after the request was sent: it may have been charged, so a 502
# InternalServerError with x-should-retry false, which the client obeys (one POST).
error = expect_error(
    "no answer after sending is an InternalServerError (502 generation_failed)",
    lambda: failing("hangup").images.generate(prompt="a fox"),
    openai.InternalServerError, 502, "generation_failed", "server_error",
)
check("maybe charged: x-should-retry false", header(error, "x-should-retry") == "false", dict(error.response.headers))
sent = posts_for("hangup", lambda: failing("hangup", retries=2).images.generate(prompt="a fox"))
check("maybe charged: the client does not retry (one POST upstream)", sent == 1, (sent, posts))

# The gateway's own 429: one generation at a time per caller, four at once.
def generate(retries):
    return failing("limited", retries).images.generate(prompt="a koi pond at night")


def attempt(retries):
    try:
        return generate(retries)
    except openai.APIStatusError as error:
        return error
    except Exception as error:  # noqa: BLE001 - reported below
        return error


with ThreadPoolExecutor(max_workers=4) as pool:
    outcomes = list(pool.map(attempt, [0] * 4))
limited = [o for o in outcomes if isinstance(o, openai.RateLimitError)]
done = [o for o in outcomes if not isinstance(o, Exception)]
others = [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, openai.RateLimitError)]
check("in-flight limit: concurrent requests get a RateLimitError", len(limited) >= 1 and len(done) >= 1 and not others, outcomes)
first = limited[0]
check(
    "in-flight limit: 429 too_many_requests_in_flight with Retry-After 1",
    first.status_code == 429 and first.code == "too_many_requests_in_flight" and header(first, "retry-after") == "1",
    (first.status_code, error_fields(first), dict(first.response.headers)),
)
check("in-flight limit: nothing charged, x-should-retry is not false", may_retry(first), dict(first.response.headers))
# The client honours Retry-After: with retries allowed, three at once all get their image.
with ThreadPoolExecutor(max_workers=3) as pool:
    outcomes = list(pool.map(attempt, [6] * 3))
check("in-flight limit: a client honouring Retry-After gets every image", all(not isinstance(o, Exception) and len(o.data) == 1 for o in outcomes), outcomes)

print("openai-client: all checks passed")
