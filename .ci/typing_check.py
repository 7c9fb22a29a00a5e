# SPDX-License-Identifier: MIT
"""CI's typing job: the library as users meet it, in three layouts, under mypy, pyright and Jedi.

Run with a Python that has mypy and jedi installed:
    python .ci/typing_check.py ROOT WHEEL PYRIGHT
ROOT is the repository, WHEEL the built wheel, PYRIGHT the pyright command. For each layout (the wheel
installed in a fresh venv, the file vendored as yourapp/_vendor/chatbotkit_session.py, the file beside
the script) it checks a correct program (no error allowed) and a faulty one (each line marked
"# mistake" must get an error, and no other line may; a line marked "names KEY" must get an error whose
text names KEY), under mypy --strict and pyright in strict mode.
Then Jedi must infer create()'s result as the response TypedDict and complete its keys. Prints a table;
exits 1 on any failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from typing import Dict, List, Set, Tuple

CORRECT = """\
import asyncio
import json
from typing import Any, Dict, List, cast

from {module} import (
    AsyncBotSessionClient,
    BotSessionClient,
    BotSessionCreateRequest,
    BotSessionCreateResponse,
    ClientOptions,
    KeepAliveTransport,
    acreate_bot_session,
    create_bot_session,
)

options = ClientOptions.from_env({{"CHATBOTKIT_API_SECRET": "sk"}}, retries=2, timeout=5.0)
client = BotSessionClient(options, total_timeout=20.0, headers={{"X-Source": "web"}})
alice: BotSessionClient = client.extend(run_as_user_id="alice", timezone="Europe/Berlin")
request: BotSessionCreateRequest = {{"durationInSeconds": 3600, "messages": [{{"type": "user", "text": "Hi"}}]}}
session: BotSessionCreateResponse = alice.create("bot_1", request)
token: str = session["token"]
expires: float = session["expiresAt"]
again = create_bot_session(client, "bot_2", {{"meta": {{"page": "/"}}}})
ids: List[str] = [again["id"], again["conversationId"]]
pooled = BotSessionClient(secret="sk", transport=KeepAliveTransport())
payload: Dict[str, Any] = json.loads('{{"durationInSeconds": 600}}')  # a dict built at run time
dynamic = client.create("bot_4", cast(BotSessionCreateRequest, payload))
bare = client.create("bot_5")  # no request: valid
bare_function = create_bot_session(client, "bot_5")


async def handler() -> str:
    aclient = AsyncBotSessionClient(secret="sk").extend(total_timeout=2.5)
    answer = await aclient.create("bot_3", {{"messages": [{{"type": "user", "text": "Hi"}}]}})
    again = await acreate_bot_session(aclient, "bot_3", {{"durationInSeconds": 60.5}})
    bare = await aclient.create("bot_3")
    bare_function = await acreate_bot_session(aclient, "bot_3")
    return answer["token"] + again["token"] + bare["token"] + bare_function["token"]


print(token, expires, ids, pooled, bare, bare_function, asyncio.run(handler()))
"""

FAULTY = """\
from {module} import AsyncBotSessionClient, BotSessionClient, ClientOptions, acreate_bot_session, create_bot_session

client = BotSessionClient(secret="sk")
wrong_name = BotSessionClient(secre="sk")  # mistake: a misspelt option
wrong_env = ClientOptions.from_env(retrys=2)  # mistake: a misspelt option in from_env
wrong_extend = client.extend(timout=1)  # mistake: a misspelt option in extend
wrong_type = BotSessionClient(timeout="5")  # mistake: a wrongly typed option
wrong_async = AsyncBotSessionClient(retries="3")  # mistake: a wrongly typed option
session = client.create("bot")
token = session["tokne"]  # mistake: a misspelt response key
other = client.create(123)  # mistake: an int bot id
extended: BotSessionClient = client.extend(retries=1)
same_class: AsyncBotSessionClient = client.extend(retries=1)  # mistake: extend returns the receiver's type
bad_key = client.create("bot", {{"durationInSecs": 60}})  # mistake: a misspelt request key, names durationInSecs
bad_key_function = create_bot_session(client, "bot", {{"durationInSec": 60}})  # mistake: names durationInSec
bad_message = client.create("bot", {{"messages": [{{"type": "user", "txt": "Hi"}}]}})  # mistake: a misspelt message key
bad_value = client.create("bot", {{"durationInSeconds": "3600"}})  # mistake: a wrongly typed request field
bad_function = create_bot_session(client, "bot", {{"meta": 1}})  # mistake: a wrongly typed field, function form


async def later() -> None:
    aclient = AsyncBotSessionClient(secret="sk")
    await aclient.create("bot", {{"durationInSecs": 60}})  # mistake: asyncio, names durationInSecs
    await acreate_bot_session(aclient, "bot", {{"metas": {{}}}})  # mistake: asyncio function form, names metas
    await acreate_bot_session(aclient, "bot", {{"messages": [{{"text": "Hi"}}]}})  # mistake: a message without type
"""

LAYOUTS = ("wheel installed", "vendored", "beside the script")


def run(argv: List[str], cwd: str, env: Dict[str, str]) -> str:
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    return out.stdout + out.stderr


def error_lines(output: str) -> Set[Tuple[str, int]]:
    """(file name, line) of every error a checker reported, in mypy's or pyright's format."""
    found = set()
    for match in re.finditer(r"^\s*(\S+?\.py):(\d+)(?::\d+)?(?::| -) error", output, re.M):
        found.add((os.path.basename(match.group(1)), int(match.group(2))))
    return found


def mistake_lines(text: str) -> Set[int]:
    return {number for number, line in enumerate(text.splitlines(), 1) if "# mistake" in line}


def named_keys(text: str) -> Dict[int, str]:
    """Line -> the key its error must name, for each mistake marked "names KEY"."""
    named = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = re.search(r"# mistake.*names (\w+)", line)
        if match:
            named[number] = match.group(1)
    return named


def error_texts(output: str, file_name: str) -> Dict[int, str]:
    """Line -> the text of the errors reported there (pyright continues a message on indented lines)."""
    texts: Dict[int, str] = {}
    line = 0
    for row in output.splitlines():
        match = re.match(r"^\s*(\S+?\.py):(\d+)(?::\d+)?(?::| -) ", row)
        if match:
            line = int(match.group(2)) if os.path.basename(match.group(1)) == file_name else 0
        elif not row.startswith("  "):
            line = 0
        if line:
            texts[line] = texts.get(line, "") + row.strip() + "\n"
    return texts


def lay_out(layout: str, root: str, wheel: str, folder: str) -> Tuple[str, str, str]:
    """Make the project folder for *layout*; return (module name to import, python executable, folder)."""
    source = os.path.join(root, "chatbotkit_session.py")
    if layout == "wheel installed":
        env_dir = os.path.join(folder, "venv")
        venv.create(env_dir, with_pip=True)
        python = os.path.join(env_dir, "bin", "python")
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--no-index", "--disable-pip-version-check", wheel], check=True
        )
        return "chatbotkit_session", python, folder
    if layout == "vendored":
        vendor = os.path.join(folder, "yourapp", "_vendor")
        os.makedirs(vendor)
        for package in (os.path.join(folder, "yourapp"), vendor):
            open(os.path.join(package, "__init__.py"), "w").close()
        shutil.copy(source, vendor)
        return "yourapp._vendor.chatbotkit_session", sys.executable, folder
    shutil.copy(source, folder)
    return "chatbotkit_session", sys.executable, folder


def check_layout(layout: str, root: str, wheel: str, pyright: str) -> List[Tuple[str, str, str, bool]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        module, python, project = lay_out(layout, root, wheel, folder)
        programs = {"correct.py": CORRECT.format(module=module), "faulty.py": FAULTY.format(module=module)}
        for name, text in programs.items():
            with open(os.path.join(project, name), "w") as handle:
                handle.write(text)
        with open(os.path.join(project, "pyrightconfig.json"), "w") as handle:
            checked = [*programs, "yourapp"] if layout == "vendored" else list(programs)
            json.dump({"typeCheckingMode": "strict", "pythonVersion": "3.8", "include": checked}, handle)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "MYPY"))}
        outputs = {
            "mypy": run(
                [
                    sys.executable,
                    "-m",
                    "mypy",
                    "--strict",
                    "--python-version",
                    "3.8",
                    "--python-executable",
                    python,
                    "--no-incremental",
                    *programs,
                ],
                project,
                env,
            ),
            "pyright": run([pyright, "--pythonpath", python], project, env),
        }
        for checker, output in outputs.items():
            errors = error_lines(output)
            expected = mistake_lines(programs["faulty.py"])
            found = {line for name, line in errors if name == "faulty.py"}
            elsewhere = sorted((name, line) for name, line in errors if name != "faulty.py")
            texts = error_texts(output, "faulty.py")
            unnamed = sorted(n for n, key in named_keys(programs["faulty.py"]).items() if key not in texts.get(n, ""))
            ok = not elsewhere and found == expected and not unnamed
            for number, key in sorted(named_keys(programs["faulty.py"]).items()):
                if layout == LAYOUTS[-1]:
                    print("%s, faulty.py line %d (%s):\n  %s" % (checker, number, key, texts.get(number, "").strip()))
            text = "%d errors on the correct program; %d of %d mistakes caught" % (
                len([name for name, _ in elsewhere if name == "correct.py"]),
                len(found & expected),
                len(expected),
            )
            if unnamed:
                text += "; the key not named at lines %s" % unnamed
            if found - expected or elsewhere:
                text += "; unexpected errors at %s" % ([("faulty.py", n) for n in sorted(found - expected)] + elsewhere)
            rows.append((layout, checker, text, ok))
            if not ok:
                print("---- %s / %s output:\n%s" % (layout, checker, output))
    return rows


def check_jedi(root: str) -> Tuple[str, bool]:
    import jedi

    code = (
        "from chatbotkit_session import BotSessionClient\n"
        "client = BotSessionClient(secret='sk')\n"
        "session = client.create('bot')\n"
        "session\n"
        "session['\n"
    )
    script = jedi.Script(code, path=os.path.join(root, "example.py"), project=jedi.Project(root))
    inferred = [name.name for name in script.infer(4, 3)]
    keys = sorted(completion.name.strip("'\"") for completion in script.complete(5, 9))
    ok = inferred == ["BotSessionCreateResponse"] and {"token", "expiresAt", "conversationId", "id"} <= set(keys)
    return "create() inferred as %s; keys completed: %s" % (inferred, keys), ok


def main() -> int:
    root, wheel, pyright = sys.argv[1:4]
    rows = []
    for layout in LAYOUTS:
        rows += check_layout(layout, root, wheel, pyright)
    jedi_text, jedi_ok = check_jedi(root)
    rows.append(("beside the script", "jedi", jedi_text, jedi_ok))
    print("| layout | checker | result | ok |")
    print("| --- | --- | --- | --- |")
    for layout, checker, text, ok in rows:
        print("| %s | %s | %s | %s |" % (layout, checker, text, "yes" if ok else "NO"))
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
