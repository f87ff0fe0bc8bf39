"""`/docs`: the API's reference page, made from its OpenAPI document on the server.

Owns `docs_page()`. FastAPI's own pages load Swagger UI or ReDoc from a CDN; this
server reaches no network and its page loads nothing from outside, so the reference
is rendered here, through the autoescaping templates, from the same `openapi.json`
that tools read at `/openapi.json`.
"""

from __future__ import annotations

from typing import Any

from qa.web.render import render_template

METHODS = ("get", "post", "put", "patch", "delete")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(schema: dict[str, Any]) -> str:
    """A short reading of a JSON schema: « string », « list of Citation », « integer | null »."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "anyOf" in schema:
        return " | ".join(type_of(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(f'"{v}"' for v in schema["enum"])
    if "const" in schema:
        return f'"{schema["const"]}"'
    kind = schema.get("type", "objet")
    if kind == "array":
        items = schema.get("items", {})
        return f"liste de {type_of(items)}" if items else "liste"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return f"objet de {type_of(extra)}" if isinstance(extra, dict) else "objet"
    return str(kind)


def _fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    return [{"name": name, "type": type_of(prop), "required": name in required,
             "description": prop.get("description", ""),
             "default": prop.get("default")}
            for name, prop in schema.get("properties", {}).items()]


def _body(operation: dict[str, Any]) -> list[dict[str, str]]:
    content = operation.get("requestBody", {}).get("content", {})
    return [{"type": media, "schema": type_of(spec.get("schema", {}))}
            for media, spec in content.items()]


def _responses(operation: dict[str, Any]) -> list[dict[str, str]]:
    shown = []
    for code, response in operation.get("responses", {}).items():
        schemas = [type_of(spec.get("schema", {}))
                   for spec in response.get("content", {}).values()]
        shown.append({"code": code, "description": response.get("description", ""),
                      "schema": schemas[0] if schemas else ""})
    return shown


def docs_page(openapi: dict[str, Any]) -> str:
    """The reference page of `openapi` (FastAPI's `app.openapi()`)."""
    operations = []
    for path, item in openapi.get("paths", {}).items():
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            operations.append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "description": op.get("description", ""),
                "parameters": [{"name": p["name"], "where": p.get("in", ""),
                                "type": type_of(p.get("schema", {})),
                                "required": p.get("required", False)}
                               for p in op.get("parameters", [])],
                "body": _body(op), "responses": _responses(op),
                "secured": bool(op.get("security")),
            })
    schemas = [{"name": name, "fields": _fields(schema),
                "description": schema.get("description", "")}
               for name, schema in sorted(openapi.get("components", {}).get("schemas",
                                                                              {}).items())]
    info = openapi.get("info", {})
    return render_template("api_docs.html", title=info.get("title", "API"),
                           version=info.get("version", ""),
                           description=info.get("description", ""),
                           operations=operations, schemas=schemas)
