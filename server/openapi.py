"""The service description as OpenAPI 3.0.3 (FastAPI writes 3.1).

OGC API – Features declares the ``oas30`` conformance class and clients such as GDAL's
OAPIF driver expect ``application/vnd.oai.openapi+json;version=3.0``. :func:`to_oas30`
rewrites FastAPI's document: JSON Schema 2020-12 constructs become their OpenAPI 3.0
forms (``nullable``, boolean ``exclusiveMinimum``, single-value ``enum``, ``example``,
``format: binary``) and keywords 3.0 does not know are dropped. :func:`install` makes
``app.openapi()`` answer the converted document and serves it, with Swagger UI and
ReDoc, at the usual paths.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response

from layers.features_meta import OAS30

OPENAPI_VERSION = "3.0.3"
OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
REDOC_PATH = "/redoc"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# The Schema Object of OpenAPI 3.0 (besides ``x-`` extensions and ``$ref``): anything
# else is a JSON Schema keyword 3.0 does not have, and its meta-schema refuses it.
SCHEMA_KEYS = frozenset({
    "title", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
    "maxProperties", "minProperties", "required", "enum", "type", "allOf", "oneOf",
    "anyOf", "not", "items", "properties", "additionalProperties", "description",
    "format", "default", "nullable", "discriminator", "readOnly", "writeOnly", "xml",
    "externalDocs", "example", "deprecated",
})
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
# Merging ``anyOf: [X, null]`` into its parent: keys that only annotate.
_ANNOTATIONS = frozenset({"title", "description", "default", "example", "deprecated",
                          "readOnly", "writeOnly", "externalDocs"})


# -- schemas ---------------------------------------------------------------------------


def schema_30(node: Any) -> Any:
    """One JSON Schema (2020-12, as FastAPI/pydantic write it) as an OpenAPI 3.0 Schema.

    Returns a new object; ``node`` is left alone.
    """
    if node is True:
        return {}
    if not isinstance(node, dict):
        return node  # ``false`` or something malformed: left to the validator
    if "$ref" in node:
        return _ref_schema(node)
    nullable = False
    s: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            s[key] = {k: schema_30(v) for k, v in value.items()}
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            kept = [v for v in value if not _is_null(v)]
            nullable = nullable or len(kept) < len(value)
            if kept:
                s[key] = [schema_30(v) for v in kept]
            else:
                s.setdefault("enum", [None])
        elif key in ("allOf", "prefixItems") and isinstance(value, list):
            s[key] = [schema_30(v) for v in value]
        elif key == "items" and isinstance(value, list):  # draft-04 tuple form
            s[key] = [schema_30(v) for v in value]
        elif key in ("items", "not") or key == "additionalProperties" and value is not True:
            s[key] = schema_30(value)
        else:
            s[key] = copy.deepcopy(value)
    nullable = _types(s) or nullable
    if "const" in s:
        const = s.pop("const")
        s.setdefault("enum", [const])
    if isinstance(s.get("enum"), list) and None in s["enum"]:
        nullable = True
    if "examples" in s:
        examples = s.pop("examples")
        if isinstance(examples, list) and examples and "example" not in s:
            s["example"] = examples[0]
    _exclusive(s, "exclusiveMinimum", "minimum", max)
    _exclusive(s, "exclusiveMaximum", "maximum", min)
    _content(s)
    _tuples(s)
    patterns = s.get("patternProperties")
    if "additionalProperties" not in s and isinstance(patterns, dict) and len(patterns) == 1:
        s["additionalProperties"] = next(iter(patterns.values()))
    if s.get("type") == "array" and "items" not in s:
        s["items"] = {}
    if s.get("required") == []:
        del s["required"]
    if nullable:
        s["nullable"] = True
    s = _collapse(s)
    if "default" in s and s["default"] is None and not s.get("nullable"):
        del s["default"]  # "no default" said as null, which a 3.0 schema would refuse
    return {k: v for k, v in s.items() if k in SCHEMA_KEYS or k.startswith("x-")}


def _ref_schema(node: dict[str, Any]) -> dict[str, Any]:
    """3.0 ignores a ``$ref``'s siblings: keep them by moving the ref into ``allOf``."""
    rest = {k: v for k, v in node.items() if k != "$ref"}
    if not rest:
        return {"$ref": node["$ref"]}
    return schema_30({"allOf": [{"$ref": node["$ref"]}], **rest})  # type: ignore[no-any-return]


def _is_null(option: Any) -> bool:
    """``{"type": "null"}``, the other half of FastAPI's ``X | None``."""
    return (isinstance(option, dict) and option.get("type") == "null"
            and set(option) <= {"type", "title", "description"})


def _types(s: dict[str, Any]) -> bool:
    """``type: [a, "null"]`` → ``type: a`` (several types → ``anyOf``); True if null was one."""
    t = s.get("type")
    if t is None:
        return False
    types = t if isinstance(t, list) else [t]
    nullable = "null" in types
    kept = [x for x in dict.fromkeys(types) if x != "null"]
    if len(kept) == 1:
        s["type"] = kept[0]
        return nullable
    del s["type"]
    if len(kept) > 1:
        options = [{"type": x} for x in kept]
        if "anyOf" in s:  # both: a value must satisfy each
            s["allOf"] = [*s.get("allOf", []), {"anyOf": options}]
        else:
            s["anyOf"] = options
    elif "enum" not in s:  # type: "null" alone
        s["enum"] = [None]
    return nullable


def _collapse(s: dict[str, Any]) -> dict[str, Any]:
    """A one-option ``anyOf``/``oneOf`` (``X | None`` once null is gone) becomes ``X``.

    A ``$ref`` goes into ``allOf`` so the parent's ``nullable`` and annotations stay.
    """
    for key in ("anyOf", "oneOf"):
        options = s.get(key)
        if not isinstance(options, list) or len(options) != 1 or not isinstance(
                options[0], dict):
            continue
        only = options[0]
        rest = {k: v for k, v in s.items() if k != key}
        clash = {k for k in only if k in rest and rest[k] != only[k] and k not in _ANNOTATIONS}
        if "$ref" in only or clash:
            s = {**rest, "allOf": [*rest.get("allOf", []), only]}
        else:  # the parent's annotations (a field's title, description) win
            s = {**only, **rest}
    return s


def _exclusive(s: dict[str, Any], exclusive: str, inclusive: str,
               stricter: Callable[[float, float], float]) -> None:
    """Numeric ``exclusiveMinimum: v`` → ``minimum: v, exclusiveMinimum: true``."""
    value = s.get(exclusive)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return  # absent, or already the 3.0 form
    bound = s.get(inclusive)
    if isinstance(bound, int | float) and bound != value and stricter(bound, value) == bound:
        del s[exclusive]  # the inclusive bound is the stricter one
        return
    s[inclusive] = value
    s[exclusive] = True


def _content(s: dict[str, Any]) -> None:
    """``contentMediaType``/``contentEncoding`` (files, bytes) → ``format``."""
    media = s.pop("contentMediaType", None)
    encoding = s.pop("contentEncoding", None)
    s.pop("contentSchema", None)
    if s.get("type") != "string" or "format" in s:
        return
    if encoding == "base64":
        s["format"] = "byte"
    elif encoding is not None or media is not None:
        s["format"] = "binary"


def _tuples(s: dict[str, Any]) -> None:
    """``prefixItems`` (or draft-04 ``items: [...]``) → one ``items`` schema for them all."""
    prefix = s.pop("prefixItems", None)
    if isinstance(s.get("items"), list):
        listed = s.pop("items")
        prefix = prefix or listed
    if not isinstance(prefix, list) or not prefix:
        if s.get("items") is False:
            s["items"] = {}
            s["maxItems"] = 0
        return
    options = [p for i, p in enumerate(prefix) if p not in prefix[:i]]
    rest = s.get("items")
    if isinstance(rest, dict):  # more items after the prefix, of this schema
        options = options + [rest] if rest not in options else options
    elif rest is False:  # a closed tuple
        s.setdefault("maxItems", len(prefix))
    s["items"] = options[0] if len(options) == 1 else {"anyOf": options}


# -- the rest of the document ----------------------------------------------------------


def _media_types(content: Any) -> None:
    if not isinstance(content, dict):
        return
    for media in content.values():
        if isinstance(media, dict) and "schema" in media:
            media["schema"] = schema_30(media["schema"])


def _parameter(p: Any) -> None:
    """A Parameter or Header Object."""
    if not isinstance(p, dict) or "$ref" in p:
        _reference(p)
        return
    if "schema" in p:
        p["schema"] = schema_30(p["schema"])
    _media_types(p.get("content"))


def _response(r: Any) -> None:
    if not isinstance(r, dict) or "$ref" in r:
        _reference(r)
        return
    r.setdefault("description", "")
    _media_types(r.get("content"))
    for header in (r.get("headers") or {}).values():
        _parameter(header)


def _reference(r: Any) -> None:
    """3.1 lets a Reference Object carry ``summary``/``description``; 3.0 does not."""
    if isinstance(r, dict) and "$ref" in r:
        for key in [k for k in r if k != "$ref"]:
            del r[key]


def _operation(op: dict[str, Any]) -> None:
    for p in op.get("parameters") or []:
        _parameter(p)
    body = op.get("requestBody")
    if isinstance(body, dict):
        if "$ref" in body:
            _reference(body)
        else:
            _media_types(body.get("content"))
    for r in (op.get("responses") or {}).values():
        _response(r)
    if not op.get("responses"):
        op["responses"] = {"default": {"description": "Any response"}}
    for callback in (op.get("callbacks") or {}).values():
        if isinstance(callback, dict):
            for item in callback.values():
                _path_item(item)


def _path_item(item: Any) -> None:
    if not isinstance(item, dict):
        return
    for p in item.get("parameters") or []:
        _parameter(p)
    for method in HTTP_METHODS:
        if isinstance(item.get(method), dict):
            _operation(item[method])


def to_oas30(doc: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI 3.1 document (as FastAPI writes it) as an OpenAPI 3.0.3 document.

    Parameters
    ----------
    doc
        The 3.1 document; it is not modified.

    Returns
    -------
    dict
        A new document that validates against the OpenAPI 3.0 schema.
    """
    out = copy.deepcopy(doc)
    out["openapi"] = OPENAPI_VERSION
    for key in ("webhooks", "jsonSchemaDialect"):
        out.pop(key, None)
    info = out.setdefault("info", {})
    summary = info.pop("summary", None)
    if summary and not info.get("description"):
        info["description"] = summary
    if isinstance(info.get("license"), dict):
        info["license"].pop("identifier", None)
    out["paths"] = paths = _ogc_names(out.get("paths") or {})
    for item in paths.values():
        _path_item(item)
    components = out.get("components")
    if isinstance(components, dict):
        components.pop("pathItems", None)
        schemas = components.get("schemas") or {}
        for name in schemas:
            schemas[name] = schema_30(schemas[name])
        for p in (components.get("parameters") or {}).values():
            _parameter(p)
        for h in (components.get("headers") or {}).values():
            _parameter(h)
        for r in (components.get("responses") or {}).values():
            _response(r)
        for b in (components.get("requestBodies") or {}).values():
            if isinstance(b, dict):
                _media_types(b.get("content"))
        schemes = components.get("securitySchemes") or {}
        for name in [n for n, v in schemes.items()
                     if isinstance(v, dict) and v.get("type") == "mutualTLS"]:
            del schemes[name]
    return out


# OGC API path parameter names: clients such as GDAL look up
# ``/collections/{collectionId}/items`` in the document to learn the query parameters
OGC_NAMES = {"collection_id": "collectionId", "fid": "featureId",
             "tms_id": "tileMatrixSetId", "z": "tileMatrix", "y": "tileRow", "x": "tileCol"}


def _ogc_names(paths: dict[str, Any]) -> dict[str, Any]:
    """The OGC API paths with the standard's parameter names (only the document's names
    change: a path template's names do not affect which URLs match)."""
    out: dict[str, Any] = {}
    for path, item in paths.items():
        if not path.startswith("/collections"):
            out[path] = item
            continue
        names = {k: v for k, v in OGC_NAMES.items() if "{" + k + "}" in path}
        for old, new in names.items():
            path = path.replace("{" + old + "}", "{" + new + "}")
        for op in item.values() if isinstance(item, dict) else ():
            for prm in op.get("parameters", []) if isinstance(op, dict) else ():
                if prm.get("in") == "path" and prm.get("name") in names:
                    prm["name"] = names[prm["name"]]
        out[path] = item
    return out


# -- serving ---------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return OpenAPI 3.0.3 and serve it with its documentation.

    The app must be built with ``openapi_url=None`` (and no docs URLs): the routes here
    replace FastAPI's, answering the document as ``application/vnd.oai.openapi+json``.
    """
    generate = app.openapi  # FastAPI's: 3.1, cached until the routes change
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        source = generate()
        if cache.get("source") is not source:
            cache["doc"] = to_oas30(source)
            cache["source"] = source
        return cache["doc"]  # type: ignore[no-any-return]

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(_router(app))


def _router(app: FastAPI) -> APIRouter:
    router = APIRouter()
    title = app.title

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def service_desc(request: Request) -> Response:
        doc = app.openapi()
        prefix = root(request)
        if prefix and app.root_path_in_servers:
            if prefix not in {s.get("url") for s in doc.get("servers", [])}:
                doc = {**doc, "servers": [{"url": prefix}, *doc.get("servers", [])]}
        return Response(orjson.dumps(doc), media_type=OAS30)

    async def swagger(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=root(request) + OPENAPI_PATH, title=f"{title} - Swagger UI",
            oauth2_redirect_url=root(request) + OAUTH2_REDIRECT_PATH)

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url=root(request) + OPENAPI_PATH,
                              title=f"{title} - ReDoc")

    router.add_route(OPENAPI_PATH, service_desc, include_in_schema=False)
    router.add_route(DOCS_PATH, swagger, include_in_schema=False)
    router.add_route(OAUTH2_REDIRECT_PATH, oauth2_redirect, include_in_schema=False)
    router.add_route(REDOC_PATH, redoc, include_in_schema=False)
    return router
