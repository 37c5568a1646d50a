"""The library's import rules, checked on its source (run by .ci/test; exits 1 naming
every breach):

1. No module reaches into another module's private parts: a name with a leading
   underscore is imported only from a module of the importer's own package (the flat
   gradient and update interfaces are named, public, internal: fnn.gradient's
   flat_forward_backward, Optimizer.update_flat), and a private module (``fnn.nn._layer``)
   only by its own package or its parent's.
2. The library never imports ``fnn.runtime`` (process-wide knobs for a program's edge):
   only the command (``fnn.cli``) does, and ``fnn`` itself re-exports it.
"""

from __future__ import annotations

import ast
import pathlib
import sys


def module_of(path: pathlib.Path) -> str:
    return ".".join(path.with_suffix("").parts).removesuffix(".__init__")


def imports(path: pathlib.Path) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` of each ``from ... import ...`` in ``path``, absolute."""
    package = module_of(path) if path.name == "__init__.py" else module_of(path.parent)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((a.name, [], node.lineno) for a in node.names)
    return found


def breaches(root: pathlib.Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        me = module_of(path)
        package = me if path.name == "__init__.py" else me.rpartition(".")[0]
        for module, names, line in imports(path):
            parts = module.split(".")
            for i, part in enumerate(parts[1:], 1):
                owner = ".".join(parts[:i])
                if part.startswith("_") and not part.startswith("__"):
                    if owner != "fnn" and not package.startswith(owner):
                        out.append(f"{path}:{line}: imports the private module {module}")
                    break
            source = pathlib.Path(*parts)
            for name in names:
                private = name.startswith("_") and not name.startswith("__")
                is_module = (source / f"{name}.py").exists() or (source / name).is_dir()
                if private and not is_module and module != package and module != me:
                    out.append(f"{path}:{line}: imports the private name {name} from {module}")
            uses_runtime = module == "fnn.runtime" or (module == "fnn" and "runtime" in names)
            if uses_runtime and not me.startswith("fnn.cli") and me != "fnn":
                out.append(f"{path}:{line}: imports fnn.runtime (only the command may)")
    return out


if __name__ == "__main__":
    found = breaches(pathlib.Path("fnn"))
    for line in found:
        print(line)
    sys.exit(1 if found else 0)
