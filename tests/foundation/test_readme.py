"""The README is the newcomer's entry point: its promises are checked here."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make run", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE), (
        ".ci/run must call the README's test command"
    )


def test_every_environment_variable_the_settings_read_is_documented():
    settings_source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'(?:environ\.get|env_bool|env_list)\(\s*"([A-Z_]+)"', settings_source))
    assert {"DATABASE_URL", "REDIS_URL", "LND_GRPC_HOST"} <= read
    undocumented = sorted(name for name in read if f"`{name}`" not in README)
    assert not undocumented, f"add these to the README's configuration table: {undocumented}"
