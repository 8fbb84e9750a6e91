"""A newcomer follows the docs exactly as written: the README's "Your first post" steps in a
real browser, the how-to-post page's commands in a real shell, the composer's "pay from my
own node" commands, and the character counter. When the docs drift from the product, these
fail.

The shell commands run as the page says, from the project's directory: a scratch directory
that links the project's `.venv`, `forum`, `lightning` and `config`, so the keys and event
files the commands write do not land in the repository.
"""

from __future__ import annotations

import html
import re
import subprocess
import time
import uuid

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

README = (ROOT / "README.md").read_text()
FIRST_POST = README.split("## Your first post (demo mode)", 1)[1].split("\n## ", 1)[0]
STEPS = re.split(r"\n(?=\d\. )", FIRST_POST.strip())
NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}


def _step(n: int) -> str:
    (step,) = [s for s in STEPS if s.startswith(f"{n}. ")]
    return " ".join(step.split())


def _bold(text: str) -> list[str]:
    return re.findall(r"\*\*(.+?)\*\*", text)


def _as_pattern(label: str) -> re.Pattern:
    """A button label from the docs; "…" stands for what the page fills in (the price)."""
    return re.compile("^" + r".+".join(map(re.escape, label.split("…"))) + "$")


@pytest.fixture
def project_dir(tmp_path):
    """Where the docs say to run the commands: the project's directory (its venv, its code)."""
    for name in (".venv", "forum", "lightning", "config"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def _shell(script: str, cwd, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _status(forum_server, event_id: str) -> dict:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{forum_server.url}/api/status/{event_id}") as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def _wait_published(forum_server, event_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _status(forum_server, event_id)
        if status.get("state") in ("published", "rejected"):
            return status
        time.sleep(0.3)
    return status


def test_readme_first_post_steps_as_written(new_page, forum_server, artifacts):
    page = new_page()
    # 1. Open the forum: the seed the README describes is there.
    page.goto(forum_server.url + "/")
    seeded = re.search(r"seeds (\w+) boards", _step(1))
    assert seeded, _step(1)
    assert page.locator(".board-card").count() == NUMBERS[seeded.group(1)]
    if "pinned welcome thread" in _step(1):
        page.goto(forum_server.url + "/b/general/")
        pinned = page.locator(".thread-row.is-pinned")
        assert pinned.count() == 1 and "Welcome" in pinned.inner_text()
        page.goto(forum_server.url + "/")

    # 2. Open a board and a thread.
    assert "Open a board and a thread" in _step(2)
    page.locator(".board-card h2 a").first.click()
    page.locator(".thread-row a").first.click()
    page.wait_for_selector("#post-list")
    thread_url = page.url
    reader = new_page()
    reader.goto(thread_url)
    reader.wait_for_function("() => document.body.dataset.live === 'on'")
    page.wait_for_function("() => document.body.dataset.live === 'on'")

    # 3. Write a reply and press the button the README names; the counter it describes.
    get_price, your_key = _bold(_step(3))
    assert page.get_by_role("button", name=your_key).is_visible()
    text = f"Following the README {uuid.uuid4().hex[:8]}"
    page.fill("#compose textarea", text)
    if "counter" in _step(3):
        counter = page.locator("#compose-body-count")
        assert re.fullmatch(rf"{len(text)} / [\d,]+ characters", counter.inner_text())
    page.get_by_role("button", name=get_price, exact=True).click()
    page.wait_for_selector("#compose .quote-box:not([hidden])")

    # 4. Press the pay button as the README labels it; the steps it names, in its order.
    pay_label = _bold(_step(4))[0]
    pay = page.locator("#compose .compose-pay")
    assert _as_pattern(pay_label).match(pay.inner_text()), (pay_label, pay.inner_text())
    stages = re.search(r"\*([^*]*→[^*]*)\*", _step(4)).group(1).split(" → ")
    shown = page.locator("#compose .steps li").all_inner_texts()
    positions = [shown.index(stage) for stage in stages]
    assert positions == sorted(positions), (stages, shown)
    pay.click()
    page.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)
    for viewer in (page, reader):  # "appears for everyone on the page without a reload"
        viewer.locator("#post-list .post", has_text=text).wait_for(timeout=15_000)
    page.screenshot(path=str(artifacts / "readme-first-post.png"), full_page=True)
    assert page.js_errors == [] and reader.js_errors == []


def _code_blocks(page_html: str) -> dict[str, str]:
    return {
        found.group(1): html.unescape(found.group(2))
        for found in re.finditer(r'<code id="(cmd-[a-z]+)">(.*?)</code>', page_html, re.S)
    }


def test_how_to_post_commands_work_as_written(forum_server, project_dir):
    blocks = _code_blocks(forum_server.get("/how-to-post/"))
    assert set(blocks) == {"cmd-client", "cmd-lncli", "cmd-invoice"}

    ran = _shell(blocks["cmd-client"], project_dir)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
    published = re.search(r"^published: (\S+)$", ran.stdout, re.M)
    assert published, ran.stdout
    assert forum_server.get(published.group(1).replace(forum_server.url, ""))
    assert "status: unknown" not in ran.stdout

    ran = _shell(blocks["cmd-lncli"], project_dir)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert '"status": "SUCCEEDED"' in ran.stdout
    event_id = re.search(r'"id":\s*"([0-9a-f]{64})"', (project_dir / "event.json").read_text())
    status = _wait_published(forum_server, event_id.group(1))
    assert status["state"] == "published", status

    # Run again, as someone retrying would: the key is kept, the client pays the new price.
    # (A second later at least: signed within the same second, the same key and text make the
    # same event id, which the forum rightly refuses as already on the forum.)
    time.sleep(1.1)
    again = _shell(blocks["cmd-client"], project_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "exists: keeping it" in again.stdout and "published: " in again.stdout

    # Paid by invoice (from the demo node here; any wallet could pay the printed invoice).
    ran = _shell(blocks["cmd-invoice"], project_dir)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "lnbcrt" in ran.stdout and "published: " in ran.stdout, ran.stdout


def test_pay_from_my_own_node_box_works_as_shown(new_page, forum_server, project_dir):
    page = new_page()
    page.goto(forum_server.url + "/b/show-and-tell/")
    page.fill("#compose-title-input", f"Paid from the shell {uuid.uuid4().hex[:6]}")
    page.fill("#compose textarea", "The composer showed the command; a terminal ran it.")
    page.click("#compose .compose-quote")
    page.wait_for_selector("#compose .quote-box:not([hidden])")
    page.get_by_role("button", name="Pay from my own node").click()
    page.wait_for_selector("#compose .pay-box:not([hidden])")
    payer = page.inner_text("#compose .lncli-cmd")
    client = page.inner_text("#compose .client-cmd")
    for command in (payer, client):
        assert "~/.lnd" not in command and "localhost:10009" not in command
        assert "--rpcserver 127.0.0.1:" in command
    assert payer.startswith(".venv/bin/python -m lightning.pay ")

    # The payer's lines pay for the event this page signed: the page sees it published.
    ran = _shell(" &\n".join(payer.splitlines()) + " &\nwait", project_dir)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stdout + ran.stderr
    page.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)
    # The client's command signs its own event with its own key: it works too.
    ran = _shell(client, project_dir)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "published: " in ran.stdout
    assert page.js_errors == []


def test_character_counter_and_nothing_cut(new_page, forum_server, artifacts):
    page = new_page()
    page.goto(forum_server.url + "/b/general/")
    page.locator(".thread-row a").first.click()
    page.wait_for_selector("#compose textarea")
    limit = int(page.get_attribute("#compose textarea", "data-max-length"))
    counter = page.locator("#compose-body-count")
    assert counter.inner_text() == f"0 / {limit:,} characters"

    # An emoji is one character, as the forum counts (code points, not UTF-16 units).
    page.fill("#compose textarea", "⚡🙂 ok")
    assert counter.inner_text() == f"5 / {limit:,} characters"

    too_long = "x" * (limit + 3)
    page.fill("#compose textarea", too_long)
    assert page.input_value("#compose textarea") == too_long  # nothing cut
    assert counter.inner_text() == (
        f"{limit + 3:,} / {limit:,} characters: 3 over the limit, shorten it to send"
    )
    assert "over" in counter.get_attribute("class")
    page.click("#compose .compose-quote")
    status = page.locator("#compose .status-text")
    status.wait_for()
    assert status.inner_text() == (
        f"The reply is {limit + 3:,} characters; this board takes at most {limit:,}. "
        "Shorten it by 3 and press Get price again. Nothing was sent."
    )
    assert page.locator("#compose .quote-box").is_hidden()
    assert page.input_value("#compose textarea") == too_long
    page.screenshot(path=str(artifacts / "counter-over-limit.png"), full_page=True)

    page.fill("#compose textarea", "x" * limit)  # exactly the limit is fine
    assert "over" not in (counter.get_attribute("class") or "")
    page.click("#compose .compose-quote")
    page.wait_for_selector("#compose .quote-box:not([hidden])")
    assert page.js_errors == []
