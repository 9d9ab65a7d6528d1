"""MkDocs hook: a page's relative link to a repository file outside ``docs/`` points at the repository.

The pages link to files such as ``../config/report.schema.json`` relatively, so the links work
where the Markdown is read in the repository. On the site those files do not exist, so each such
link whose target exists in the checkout is rewritten to the file in the repository
(``repo_url``). A link whose target does not exist is left alone, so ``mkdocs build --strict``
still fails on it.
"""

import os
import re

_LINK = re.compile(r"(\]\()(\.\./[^)\s#]+)(#[^)\s]*)?(\))")


def on_page_markdown(markdown, page, config, files):
    docs_dir = os.path.realpath(config["docs_dir"])
    root = os.path.dirname(docs_dir)
    page_dir = os.path.dirname(os.path.join(docs_dir, page.file.src_path))

    def rewrite(match):
        target = os.path.realpath(os.path.join(page_dir, match.group(2)))
        inside_docs = target == docs_dir or target.startswith(docs_dir + os.sep)
        if inside_docs or not target.startswith(root + os.sep) or not os.path.exists(target):
            return match.group(0)
        kind = "tree" if os.path.isdir(target) else "blob"
        relative = os.path.relpath(target, root).replace(os.sep, "/")
        url = f"{config['repo_url'].rstrip('/')}/{kind}/main/{relative}"
        return f"{match.group(1)}{url}{match.group(3) or ''}{match.group(4)}"

    return _LINK.sub(rewrite, markdown)
