"""The official `mcp` Python SDK (pinned in requirements.txt) driving `imagegen mcp` over
stdio, against an `imagegen sim` the caller started (its URLs and keys in the
environment, at realistic speed).

Checks: the tools and their schemas; an estimate that spends nothing; a generation whose
progress notifications (a `progress_callback`) rise to the total, and whose image comes
back inline, saved at the path given, for the credits the simulator charged;
a budget refusal as a tool error saying what is left and what is needed; a wait past
`--wait-limit` answered "pending" with the job id and finished by `get_generation`,
paid for once (one job in the ledger, the Kolbo balance down by one charge).

Exits 1 on the first failed check (an AssertionError), 0 when all pass.
"""

import asyncio
import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

BIN = os.environ["IMAGEGEN_BIN"]
WORK = Path(os.environ["IMAGEGEN_WORK"])
DB = str(WORK / "mcp-ledger.sqlite3")
OUT = WORK / "mcp-out"
TOOLS = {"estimate_cost", "generate_image", "get_generation", "list_history", "list_models"}


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print(f"  ok: {message}")


@asynccontextmanager
async def server(*args):
    """A session with `imagegen --db DB mcp --out OUT ARGS`."""
    params = StdioServerParameters(
        command=BIN,
        args=["--db", DB, "mcp", "--out", str(OUT), *args],
        env={k: v for k, v in os.environ.items() if k.startswith(("KOLBO_", "KOALA_", "IMAGEGEN_POLL"))},
        cwd=str(WORK),
    )
    with open(WORK / "mcp.err", "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def call(session, tool, progress=None, **arguments):
    """`tool` with `arguments`; `progress` (a list) collects its progress notifications."""
    callback = None
    if progress is not None:

        async def callback(value, total, message):
            progress.append((value, total, message))

    result = await session.call_tool(tool, arguments, progress_callback=callback)
    return result, result.structured_content


def kolbo_balance():
    out = subprocess.run([BIN, "credits", "--json"], capture_output=True, text=True, check=True)
    balances = json.loads(out.stdout)["balances"]
    return next(b["credits"] for b in balances if b["provider"] == "kolbo")


async def main():
    start_balance = kolbo_balance()
    print("tools, estimate, generate:")
    async with server() as session:
        tools = (await session.list_tools()).tools
        check({t.name for t in tools} == TOOLS, f"five tools: {sorted(t.name for t in tools)}")
        generate = next(t for t in tools if t.name == "generate_image")
        check("prompt" in generate.input_schema["properties"], "generate_image's input schema names `prompt`")
        check(generate.output_schema is not None, "generate_image declares an output schema")

        result, out = await call(session, "estimate_cost", prompt="a fox", count=2, aspect="16:9")
        check(not result.is_error, "estimate_cost answers")
        check(out["plans"][0]["model"] == "kolbo/z-image/turbo", f"cheapest plan first: {out['plans'][0]['model']}")
        check(out["plans"][0]["credits"] == 1.0, "2 images of z-image/turbo: 1 credit")
        check(all(c["reason"] for c in out["excluded"]), "every excluded model says why")
        check(kolbo_balance() == start_balance, "an estimate spends nothing")

        progress = []
        result, out = await call(
            session, "generate_image", progress=progress, prompt="a red fox in the snow", model="kolbo/z-image/turbo"
        )
        check(not result.is_error, f"generate_image succeeds: {out.get('message')}")
        values = [value for value, _, _ in progress]
        messages = [message for _, _, message in progress]
        check(len(progress) >= 2, f"progress notifications heard: {messages}")
        check(all(a < b for a, b in zip(values, values[1:])), f"progress only rises: {values}")
        check(all(total == 100 for _, total, _ in progress), "each out of a total of 100")
        check(progress[-1][0] == 100 and messages[-1] == "done", "the last at the total: done")
        check("submitted to kolbo/z-image/turbo" in messages, "says where it was submitted")
        check(any(m.startswith("generating ") and m.endswith("%") for m in messages), "and how far it is")
        check("saved 1 of 1" in messages, "and what it saved")
        check(out["status"] == "done", "status done")
        images = [c for c in result.content if c.type == "image"]
        check(len(images) == 1 and images[0].mime_type.startswith("image/"), "the image comes back inline")
        image = out["images"][0]
        check(Path(image["path"]).is_file(), f"saved at {image['path']}")
        check((image["provider"], image["model"]) == ("kolbo", "z-image/turbo"), "made by kolbo/z-image/turbo")
        check(image["credits"] == 0.5, "0.5 credits for the image")
        check(kolbo_balance() == start_balance - 0.5, "the simulator charged exactly that")

    print("a budget refusal:")
    async with server("--budget", "1") as session:
        result, out = await call(session, "generate_image", prompt="two foxes", count=2, model="kolbo/flux-2/flash")
        check(result.is_error, "refused as a tool error (isError)")
        check(out["error"] == "budget_exceeded", "error budget_exceeded")
        check(out["remaining_credits"] == 1.0 and out["needed_credits"] == 3.0, "says 1 credit left, 3 needed")
        text = result.content[0].text
        check("1 credit left" in text and "3 credits" in text, f"and in words: {text}")
        check(kolbo_balance() == start_balance - 0.5, "nothing was sent")

    print("a wait past --wait-limit, fetched with get_generation:")
    async with server("--wait-limit", "0.2") as session:
        result, out = await call(session, "generate_image", prompt="a slow heron", model="kolbo/z-image/turbo")
        check(not result.is_error, "a long wait is not an error")
        check(out["status"] == "pending", f"status pending: {out['message']}")
        check("get_generation" in out["message"] and "pay" in out["message"], "it says to fetch, not to run again")
        job_id = out["jobs"][0]["job_id"]
        for _ in range(120):
            result, out = await call(session, "get_generation", job_id=job_id)
            if out["status"] != "pending":
                break
            await asyncio.sleep(0.25)
        check(out["status"] == "done", f"get_generation finishes it: {out['message']}")
        check(any(c.type == "image" for c in result.content), "with the image inline")
        check(out["images"][0]["job_id"] == job_id and Path(out["images"][0]["path"]).is_file(), "saved")
        result, out = await call(session, "list_history", search="heron")
        check(len(out["generations"]) == 1, "one job in the ledger for it")
        check(kolbo_balance() == start_balance - 1.0, "paid once")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as failure:
        print(f"FAIL: {failure}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:  # anything else is a failure too, never a skip
        print(f"FAIL: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    print("all MCP checks passed")
