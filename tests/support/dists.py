"""Installed distributions made by hand (a dist-info with METADATA, RECORD and entry points), for
discovery and pipeline tests that need a site directory's shape without building wheels."""

from pathlib import Path


def installed(root, name, module, telly_toml=None, files=None, entry_point=True, source="", version="1.0"):
    """``name`` ``version`` under ``root``, shipping the package ``module`` (dotted under a namespace
    package: ``acme.textutils`` gets no ``acme/__init__.py``), opted in through its entry point
    and ``telly.toml`` when given."""
    root = Path(root)
    info = root / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if entry_point:
        (info / "entry_points.txt").write_text(f"[telly]\n{module.replace('.', '_')} = {module}\n")
    package = root.joinpath(*module.split("."))
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(source)
    if telly_toml is not None:
        (package / "telly.toml").write_text(telly_toml)
    path = module.replace(".", "/")
    listed = files if files is not None else [f"{path}/__init__.py", f"{path}/telly.toml"]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in listed + [f"{info.name}/RECORD"]))
