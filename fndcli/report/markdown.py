"""fnd reproduce's report: report.md (the claims, each section's paragraph and figures) and a self-contained
report.html. Nothing here computes: the claims come from `fndcli.reproduce`."""

from fndcli.report.figures import markdown_table


def report_markdown(result, facts, figures):
    """report.md: the claims table, then a paragraph and the figures of each section."""
    counts = result.claims["verdict"].value_counts().to_dict()
    lines = [
        "# fastbook chapter 17, reproduced by fnd",
        "",
        *[f"- {k}: {v}" for k, v in facts],
        f"- claims: {', '.join(f'{n} {v}' for v, n in sorted(counts.items()))}",
        "",
        "A claim **holds** by its rule; **differs** where a figure that depends on the machine is off from "
        "the book's beyond the stated factor (never a failure); **fails** where a claim that should hold "
        "anywhere does not (exit 1).",
        "",
        "## Claims",
        "",
        markdown_table(
            ["section", "claim", "chapter", "book", "fnd here", "verdict", "rule"],
            [
                [r.section, r.claim, r.source, r.book, r.fnd, f"**{r.verdict}**", r.rule]
                for r in result.claims.itertuples()
            ],
        ),
        "",
    ]
    titles = {
        "ladder": "The matmul ladder",
        "init": "Initialisation",
        "backprop": "The backward pass",
        "bridge": "The bridge to PyTorch",
        "train": "Training",
    }
    pictures = {"ladder": ["ladder.png"], "init": ["init-std.png"], "train": ["train-loss.png"]}
    for section, text in result.text.items():
        lines += [f"## {titles[section]}", "", text, ""]
        lines += [f"![{name}]({name})" for name in pictures.get(section, []) if name in figures]
        lines += [""]
    return "\n".join(lines)


def report_html(markdown, images):
    """A self-contained report.html: the Markdown rendered, the PNGs inlined as data URIs."""
    import base64

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    for name, data in images.items():
        body = body.replace(f'src="{name}"', f'src="data:image/png;base64,{base64.b64encode(data).decode()}"')
    style = (
        "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}"
        "img{max-width:100%}"
    )
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>fnd reproduce</title>'
        f"<style>{style}</style></head><body>\n{body}</body></html>\n"
    )
