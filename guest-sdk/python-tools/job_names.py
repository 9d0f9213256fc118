"""Prints, as JSON, the jobs of a tglib service's ``jobs.py``, for ``tgrun build`` (which
writes them into the component for ``tgrun check``).

    python3 job_names.py SERVICE_DIR/jobs.py

The jobs are what the component's export takes (``tgrun._export.export_jobs``): the
functions ``jobs.py`` defines at its top level whose names do not start with ``_``. Read
from the source (``ast``), so nothing of the service runs here.
"""

import ast
import json
import sys


def job_names(source: str, filename: str) -> list:
    tree = ast.parse(source, filename)
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_")
    ]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        print(json.dumps(job_names(f.read(), sys.argv[1])))
