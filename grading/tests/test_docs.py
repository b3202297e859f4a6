"""The README's module and milestone tables are the manifest's, and true."""

from grading import curriculum, docs


def test_readme_tables_match_the_manifest():
    text = docs.README.read_text(encoding="utf-8")
    assert docs.updated(text, docs.render()) == text, "run `python -m grading.docs` to refresh README.md"


def test_table_lists_every_module_and_milestone():
    table = docs.render()
    cur = curriculum.load()
    for m in cur.modules:
        assert f"| {m.number:02d} | {m.title} |" in table
    for s in cur.milestones:
        assert f"`{s.slug}`" in table
