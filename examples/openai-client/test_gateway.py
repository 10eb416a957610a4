"""The official `openai` Python client against `imagegen serve` (on its embedded simulator).

Run by run.sh, which starts the gateway and passes:
  IMAGEGEN_GATEWAY_URL   the gateway's base URL, e.g. http://127.0.0.1:40123/v1
  IMAGEGEN_KEY           a gateway key with no budget limit
  IMAGEGEN_TIGHT_KEY     a gateway key whose budget covers one cheap image
Exits non-zero on the first failed check, naming it.
"""

import base64
import os
import sys
import urllib.request
import uuid

import openai
from openai import OpenAI

URL = os.environ["IMAGEGEN_GATEWAY_URL"]
KEY = os.environ["IMAGEGEN_KEY"]
TIGHT_KEY = os.environ["IMAGEGEN_TIGHT_KEY"]

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"


def image_bytes(data: bytes) -> bool:
    return data.startswith(PNG) or data.startswith(JPEG)


def check(name, condition, detail=""):
    if not condition:
        print(f"openai-client: FAIL {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"openai-client: ok   {name}")


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

try:
    client.images.generate(prompt="a fox", model="no-such-provider/no-such-model")
    check("an unknown model is refused", False, "no error")
except (openai.NotFoundError, openai.BadRequestError) as error:
    check("an unknown model is a 404 or 400", error.status_code in (400, 404), error.status_code)

# A wrong key is an AuthenticationError.
try:
    OpenAI(api_key="igk_" + "0" * 40, base_url=URL, max_retries=0).images.generate(prompt="a fox")
    check("a wrong key is refused", False, "no error")
except openai.AuthenticationError as error:
    check("a wrong key is an AuthenticationError", error.status_code == 401, error.status_code)

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

# The model list, in OpenAI's shape.
models = client.models.list()
ids = [m.id for m in models.data]
check("models: provider/model ids", len(ids) > 0 and all("/" in i for i in ids), ids[:3])

print("openai-client: all checks passed")
