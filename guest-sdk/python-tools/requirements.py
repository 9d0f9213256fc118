"""Prints, as JSON, the dependencies a tglib service declares, for ``tgrun build``:
``{"source": FILE or null, "requirements": [one requirement a line, as pip reads them],
"tests": {"requirements": [...], "suite": MODULE or null}}``.

    python3 requirements.py SERVICE_DIR

Looked for in the service's folder, then in its parent (a tgnms service's ``setup.py`` sits
beside its package): ``requirements.txt`` (its lines, continuations joined, comments and
options of its own such as ``-r`` dropped), else ``setup.py``'s ``install_requires`` (read
from the source, never run), else ``pyproject.toml``'s ``[project] dependencies``.

What its tests need more (for ``tgrun test``), from the folder and its parent:
``setup.py``'s ``tests_require`` and ``extras_require`` of a test extra (``ci``, ``test``,
``tests``, ``testing``), ``pyproject.toml``'s optional dependencies of those extras,
``requirements-test.txt``/``test-requirements.txt``; and the test suite ``setup.py`` names
(``test_suite=``, a string or an item of a module-level dict literal, as tgnms' services
write ``ptr_params["test_suite"]``).
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


TEST_EXTRAS = ("ci", "test", "tests", "testing")
TEST_FILES = ("requirements-test.txt", "test-requirements.txt")


def _literal(node, path, what, names):
    """``node``'s value: a literal, or a module-level dict literal's item."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id in names
    ):
        try:
            return names[node.value.id][ast.literal_eval(node.slice)]
        except (ValueError, KeyError, TypeError):
            pass
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise SystemExit(f"{path}: {what} is not a literal")


def tests_from_setup_py(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and isinstance(node.value, ast.Dict):
                try:
                    names[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
    requirements, suite = [], None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg == "tests_require":
                requirements += [str(v) for v in _literal(kw.value, path, "tests_require", names)]
            elif kw.arg == "extras_require":
                extras = _literal(kw.value, path, "extras_require", names)
                for extra in TEST_EXTRAS:
                    requirements += [str(v) for v in extras.get(extra, [])]
            elif kw.arg == "test_suite":
                suite = str(_literal(kw.value, path, "test_suite", names))
    return requirements, suite


def tests_from_pyproject(path):
    import tomllib

    with open(path, "rb") as f:
        extras = tomllib.load(f).get("project", {}).get("optional-dependencies", {})
    return [str(r) for extra in TEST_EXTRAS for r in extras.get(extra, [])]


def declared_tests(folder):
    requirements, suite = [], None
    for where in (folder, os.path.dirname(os.path.abspath(folder))):
        setup = os.path.join(where, "setup.py")
        if os.path.isfile(setup):
            more, named = tests_from_setup_py(setup)
            requirements += more
            suite = suite or named
        pyproject = os.path.join(where, "pyproject.toml")
        if os.path.isfile(pyproject):
            requirements += tests_from_pyproject(pyproject)
        for name in TEST_FILES:
            path = os.path.join(where, name)
            if os.path.isfile(path):
                requirements += from_requirements_txt(path)
    return {"requirements": list(dict.fromkeys(requirements)), "suite": suite}


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
    print(json.dumps({**declared(sys.argv[1]), "tests": declared_tests(sys.argv[1])}))
