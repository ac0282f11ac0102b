"""The documentation is a map a newcomer can follow: the top README stays short and names every recipe, every recipe
folder explains itself with its commands, and no relative link or anchor in the Markdown points nowhere."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(p.name for p in (ROOT / "recipes").iterdir() if (p / "recipe.yaml").exists() or p.is_dir())
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def markdown_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "recipes").glob("*/README.md"))]


def anchors(path):
    """GitHub's heading slugs: lower case, punctuation dropped, spaces to hyphens."""
    out, fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            out.add(re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-"))
    return out


def test_the_top_readme_is_a_map_that_names_every_recipe():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    missing = [name for name in RECIPES if f"](recipes/{name}/)" not in text]
    assert not missing, f"recipes without a line in the README's index: {missing}"
    for command in ("make demo", "make test", "make test-slow"):
        assert command in text


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_folder_has_a_readme_with_its_commands(name):
    readme = ROOT / "recipes" / name / "README.md"
    assert readme.exists(), f"recipes/{name} has no README.md"
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# ")
    assert f"recipes/{name}" in text and re.search(r"python scripts/|llm-recipe|accelerate launch", text), \
        f"recipes/{name}/README.md does not show how to run it"


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for page in markdown_files():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and dest.is_file() and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
