"""Prints, as JSON, the dependencies a tglib service declares, for ``tgrun build``:
``{"source": FILE or null, "requirements": [one requirement a line, as pip reads them]}``.

    python3 requirements.py SERVICE_DIR

Looked for in the service's folder, then in its parent (a tgnms service's ``setup.py`` sits
beside its package): ``requirements.txt`` (its lines, continuations joined, comments and
options of its own such as ``-r`` dropped), else ``setup.py``'s ``install_requires`` (read
from the source, never run), else ``pyproject.toml``'s ``[project] dependencies``.
"""

import ast
import json
import os
import sys


def from_requirements_txt(path):
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    lines = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def from_setup_py(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "install_requires":
                    try:
                        value = ast.literal_eval(kw.value)
                    except ValueError:
                        raise SystemExit(f"{path}: install_requires is not a literal list")
                    return [str(v) for v in value]
    return []


def from_pyproject(path):
    import tomllib

    with open(path, "rb") as f:
        return list(tomllib.load(f).get("project", {}).get("dependencies", []))


def declared(folder):
    for where in (folder, os.path.dirname(os.path.abspath(folder))):
        for name, read in (
            ("requirements.txt", from_requirements_txt),
            ("setup.py", from_setup_py),
            ("pyproject.toml", from_pyproject),
        ):
            path = os.path.join(where, name)
            if os.path.isfile(path):
                return {"source": path, "requirements": read(path)}
    return {"source": None, "requirements": []}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(json.dumps(declared(sys.argv[1])))
