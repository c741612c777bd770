"""SARIF 2.1.0 output (bandit/ruff style) that GitHub code scanning accepts.

- every registered rule is listed once in tool.driver.rules (stable ruleIndex), with its help text;
- each result has ruleId, ruleIndex, level, message, a physical location (artifact URI relative to
  %SRCROOT% — the directory explr runs in, the repository root in CI — and a start line) and
  partialFingerprints, so code scanning tracks a finding across commits even when lines move.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Iterable
from urllib.parse import quote

from explr import __version__
from explr.audit_report import AuditReport
from explr.findings import Finding, Location, Severity
from explr.rules.docs import anchor, rule_markdown, rule_text
from explr.rules.registry import RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "explrFindingHash/v1"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_RULE_INDEX = {code: i for i, code in enumerate(RULES)}


def render_sarif(report: AuditReport, model_path: str | None, *, root: Path | None = None,
                 docs_url: str | None = None) -> str:
    """An audit as SARIF. Findings without a location point at the model file (line 1)."""
    properties = {"model": report.model, "summary": report.summary(),
                  "verification": report.verification.status}
    return render_findings_sarif(report.findings, fallback=_model_file(model_path), root=root,
                                 docs_url=docs_url, properties=properties)


def render_findings_sarif(findings: Iterable[Finding], *, fallback: Location | None = None,
                          root: Path | None = None, docs_url: str | None = None,
                          properties: dict | None = None) -> str:
    """Any findings (model, config, lock) as one SARIF run; `root` defaults to the current directory."""
    root = Path(root or Path.cwd()).resolve()
    docs_url = docs_url if docs_url is not None else default_docs_url()
    seen: Counter = Counter()
    results = [_result(f, fallback, root, seen) for f in findings]
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "explr", "version": __version__, "semanticVersion": __version__,
                            "rules": [_descriptor(code, docs_url) for code in RULES]}},
        "originalUriBaseIds": {SRCROOT: {"uri": root.as_uri().rstrip("/") + "/"}},
        "results": results,
    }
    if docs_url:
        run["tool"]["driver"]["informationUri"] = docs_url
    if properties:
        run["properties"] = properties
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2) + "\n"


def default_docs_url() -> str | None:
    """docs/rules.md in the project's repository, from the package's Project-URL metadata (if any)."""
    try:
        urls = metadata.metadata("explr").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:  # pragma: no cover - explr runs from a source tree
        return None
    by_label = dict(u.split(", ", 1) for u in urls if ", " in u)
    for label in ("Repository", "Source", "Homepage"):
        url = by_label.get(label, "")
        if url.startswith("https://github.com/"):
            return url.rstrip("/") + "/blob/main/docs/rules.md"
    return by_label.get("Documentation")


def _descriptor(code: str, docs_url: str | None) -> dict:
    rule = RULES[code]
    descriptor = {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.what_it_does or rule.summary},
        "help": {"text": rule_text(rule), "markdown": rule_markdown(rule)},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": ["explr", _family(code)]},
    }
    if docs_url:
        descriptor["helpUri"] = f"{docs_url}#{anchor(code)}"
    return descriptor


def _family(code: str) -> str:
    return {"1": "model", "2": "config", "3": "lock"}[code[3]]


def _result(f: Finding, fallback: Location | None, root: Path, seen: Counter) -> dict:
    result: dict[str, Any] = {"ruleId": f.code, "ruleIndex": _RULE_INDEX[f.code], "level": LEVELS[f.severity],
              "message": {"text": f.message}}
    location = f.location if f.location is not None and f.location.path else fallback
    uri = None
    if location is not None and location.path:
        artifact = _artifact(location.path, root)
        uri = artifact["uri"]
        physical = {"artifactLocation": artifact, "region": {"startLine": max(location.line or 1, 1)}}
        result["locations"] = [{"physicalLocation": physical}]
    if f.module:
        logical = [{"fullyQualifiedName": f.module, "kind": "module"}]
        result.setdefault("locations", [{}])[0]["logicalLocations"] = logical
    result["partialFingerprints"] = {FINGERPRINT_KEY: _fingerprint(f, uri, seen)}
    return result


def _artifact(path: str, root: Path) -> dict:
    """A URI relative to %SRCROOT% when the file is under root; an absolute file URI otherwise."""
    absolute = Path(path) if os.path.isabs(path) else root / path
    absolute = Path(os.path.normpath(absolute))
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(PurePosixPath(*relative.parts).as_posix()), "uriBaseId": SRCROOT}


def _fingerprint(f: Finding, uri: str | None, seen: Counter) -> str:
    """Stable across line moves and number changes in the message; identical findings get :2, :3..."""
    text = re.sub(r"(?<![\w.])\d+(\.\d+)?(e[-+]?\d+)?", "#", f.message)  # numbers, not names like layer1.0
    digest = hashlib.sha256("\0".join((f.code, f.module or "", uri or "", text)).encode()).hexdigest()[:32]
    seen[digest] += 1
    return f"{digest}:{seen[digest]}"


def _model_file(model_path: str | None) -> Location | None:
    """'models/net.py:build' -> models/net.py; a package spec ('pkg.mod:NAME') has no file to point at."""
    if not model_path:
        return None
    file = re.sub(r":[A-Za-z_][\w.]*$", "", model_path)
    return Location(file, 1) if file.endswith(".py") else None
