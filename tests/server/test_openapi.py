"""The service description: OpenAPI 3.0.3 (the ``oas30`` conformance class), served and
converted from FastAPI's 3.1 document, validated with openapi-spec-validator."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import pytest
from fastapi import FastAPI, File, Query, UploadFile
from fastapi.testclient import TestClient
from openapi_spec_validator import OpenAPIV30SpecValidator, validate
from pydantic import BaseModel, Field

from layers.features_meta import OAS30
from server.app import create_app
from server.openapi import SCHEMA_KEYS, schema_30, to_oas30

OAS30_CONFORMANCE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30"
ITEMS = "/collections/{collectionId}/items"
# JSON Schema 2020-12 keywords OpenAPI 3.0 does not have.
ONLY_31 = {"const", "examples", "prefixItems", "$schema", "$id", "$defs", "$anchor",
           "$dynamicRef", "unevaluatedProperties", "unevaluatedItems", "contentMediaType",
           "contentEncoding", "dependentSchemas", "dependentRequired", "patternProperties",
           "if", "then", "else", "contains", "propertyNames"}


@pytest.fixture(scope="module")
def client(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def doc(client) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == OAS30
    return r.json()  # type: ignore[no-any-return]


def schemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Schema Object in an OpenAPI 3.0 document (or under a schema), with its path."""
    if isinstance(node, dict):
        if "schema" in node and isinstance(node["schema"], dict):
            yield from _schema_tree(node["schema"], f"{path}/schema")
        for key, value in node.items():
            if key == "schemas" and isinstance(value, dict):
                for name, s in value.items():
                    yield from _schema_tree(s, f"{path}/schemas/{name}")
            elif key != "schema":
                yield from schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from schemas(value, f"{path}/{i}")


def _schema_tree(s: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(s, dict):
        return
    yield path, s
    for key in ("items", "not", "additionalProperties"):
        yield from _schema_tree(s.get(key), f"{path}/{key}")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(s.get(key) or []):
            yield from _schema_tree(sub, f"{path}/{key}/{i}")
    for name, sub in (s.get("properties") or {}).items():
        yield from _schema_tree(sub, f"{path}/properties/{name}")


def assert_openapi_30(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.0.3"
    validate(doc, cls=OpenAPIV30SpecValidator)
    assert "webhooks" not in doc and "jsonSchemaDialect" not in doc
    for path, s in schemas(doc):
        assert not set(s) & ONLY_31, (path, s)
        assert all(k in SCHEMA_KEYS or k == "$ref" or k.startswith("x-") for k in s), (path, s)
        if "$ref" in s:
            assert set(s) == {"$ref"}, (path, s)  # 3.0 ignores a $ref's siblings
        t = s.get("type")
        assert t is None or isinstance(t, str) and t != "null", (path, s)
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            assert key not in s or isinstance(s[key], bool), (path, s)
        if s.get("exclusiveMinimum"):
            assert "minimum" in s, (path, s)
        if s.get("exclusiveMaximum"):
            assert "maximum" in s, (path, s)
        if s.get("type") == "array":
            assert isinstance(s.get("items"), dict), (path, s)


# -- the served document ---------------------------------------------------------------


def test_service_description_is_valid_openapi_30(doc):
    assert_openapi_30(doc)
    assert doc["info"]["title"] == "Da Nang Twin"


def test_no_json_schema_2020_constructs_anywhere(doc):
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            assert node.get("type") != "null", path
            assert not isinstance(node.get("type"), list), path
            if "examples" in node:  # only the Example Objects map of 3.0 stays
                assert isinstance(node["examples"], dict), path
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    walk(doc, "#")
    text = str(doc)
    for word in ("'const'", "'prefixItems'", "'$schema'", "'unevaluatedProperties'",
                 "'contentMediaType'", "'contentEncoding'", "'$defs'"):
        assert word not in text


def test_features_paths_are_described(doc):
    op = doc["paths"][ITEMS]["get"]
    assert op["summary"]
    params = {p["name"]: p for p in op["parameters"]}
    assert {"collectionId", "bbox", "limit", "datetime", "filter", "filter-lang",
            "properties", "sortby", "ids", "f"} <= set(params)
    assert params["collectionId"]["in"] == "path" and params["collectionId"]["required"]
    bbox = params["bbox"]
    assert bbox["schema"]["type"] == "array" and bbox["schema"]["items"]["type"] == "number"
    assert bbox["style"] == "form" and bbox["explode"] is False
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 10000,
                                         "default": 100}
    assert params["filter-lang"]["schema"]["enum"] == ["cql2-text", "cql2-json", "cql-text"]
    assert set(params["f"]["schema"]["enum"]) == {"json", "csv"}
    assert set(op["responses"]["200"]["content"]) == {"application/geo+json", "text/csv"}
    assert {"400", "404"} <= set(op["responses"])

    item = doc["paths"][ITEMS + "/{featureId}"]["get"]
    assert set(item["responses"]["200"]["content"]) == {"application/geo+json"}
    for path, media in [("/", "application/json"), ("/conformance", "application/json"),
                        ("/collections", "application/json"),
                        ("/collections/{collectionId}", "application/json"),
                        ("/collections/{collectionId}/queryables", "application/schema+json")]:
        op = doc["paths"][path]["get"]
        assert op["summary"], path
        assert media in op["responses"]["200"]["content"], path


def test_tiles_paths_are_described(doc):
    for path in ("/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/"
                 "{tileCol}/{tileRow}",
                 "/tiles/{layer_ids}/{z}/{x}/{y}.mvt"):
        op = doc["paths"][path]["get"]
        assert op["summary"]
        tile = op["responses"]["200"]["content"]["application/vnd.mapbox-vector-tile"]
        assert tile["schema"] == {"type": "string", "format": "binary"}
        assert {"204", "304", "404"} <= set(op["responses"])
        path_names = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert path_names >= ({"tileMatrix", "tileCol", "tileRow"} if "{tileRow}" in path
                              else {"z", "x", "y"})
    for path in ("/tiles", "/tileMatrixSets", "/collections/{collectionId}/tiles",
                 "/collections/{collectionId}/tiles/{tileMatrixSetId}"):
        assert doc["paths"][path]["get"]["summary"], path


def test_conformance_and_landing_page_point_at_it(client, doc):
    conf = client.get("/conformance").json()["conformsTo"]
    assert OAS30_CONFORMANCE in conf
    links = {ln["rel"]: ln for ln in client.get("/", headers={"Accept": "application/json"})
             .json()["links"]}
    desc, docs = links["service-desc"], links["service-doc"]
    assert desc["type"] == OAS30 and docs["type"] == "text/html"
    r = client.get(desc["href"])
    assert r.headers["content-type"] == OAS30 and r.json() == doc
    r = client.get(docs["href"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text and "swagger" in r.text.lower()
    assert client.head("/openapi.json").status_code == 200
    assert "/openapi.json" in client.get("/redoc").text
    assert client.get("/docs/oauth2-redirect").status_code == 200


def test_app_openapi_is_the_converted_document(client, doc):
    assert client.app.openapi() == doc
    assert client.app.openapi() is client.app.openapi()  # converted once, then cached


# -- the converter on its own ----------------------------------------------------------


class Child(BaseModel):
    name: str = Field(examples=["Hải Châu"])


class Tricky(BaseModel):
    kind: Literal["a"] = "a"
    maybe: Literal["x", "y", None] = None
    child: Child | None = None
    described: Child = Field(description="a $ref with a sibling")
    pair: tuple[float, float] | None = None
    triple: tuple[int, str, float]
    blob: bytes | None = None
    n: Annotated[int, Field(gt=0, lt=10)] = 1
    either: int | str | None = None
    mapping: dict[str, int] = {}


def tricky_app() -> FastAPI:
    app = FastAPI()

    @app.post("/tricky")
    def tricky(body: Tricky, q: Annotated[float | None, Query(gt=0, examples=[3])] = None,
               ) -> Tricky:
        return body

    @app.post("/upload")
    def upload(f: Annotated[UploadFile, File()]) -> dict[str, int]:
        return {}

    return app


def test_pydantic_models_convert_to_valid_30():
    source = tricky_app().openapi()
    assert source["openapi"].startswith("3.1")
    before = copy.deepcopy(source)
    doc = to_oas30(source)
    assert source == before  # the input is left alone
    assert_openapi_30(doc)
    assert to_oas30(doc) == doc  # idempotent

    props = doc["components"]["schemas"]["Tricky"]["properties"]
    assert props["kind"]["enum"] == ["a"]
    assert props["child"] == {"allOf": [{"$ref": "#/components/schemas/Child"}],
                              "nullable": True}
    assert props["described"]["allOf"] == [{"$ref": "#/components/schemas/Child"}]
    assert props["described"]["description"] == "a $ref with a sibling"
    assert props["pair"]["items"] == {"type": "number"} and props["pair"]["nullable"]
    assert props["pair"]["minItems"] == props["pair"]["maxItems"] == 2
    assert props["blob"]["format"] == "binary" and props["blob"]["nullable"]
    assert props["n"]["minimum"] == 0 and props["n"]["exclusiveMinimum"] is True
    assert props["n"]["maximum"] == 10 and props["n"]["exclusiveMaximum"] is True
    assert len(props["either"]["anyOf"]) == 2 and props["either"]["nullable"]
    assert doc["components"]["schemas"]["Child"]["properties"]["name"]["example"] == "Hải Châu"
    (q,) = doc["paths"]["/tricky"]["post"]["parameters"]
    assert q["schema"]["type"] == "number" and q["schema"]["nullable"]
    assert q["schema"]["example"] == 3 and q["schema"]["exclusiveMinimum"] is True


@pytest.mark.parametrize(("source", "expected"), [
    ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
    ({"type": ["integer", "string"]},
     {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    ({"anyOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}], "title": "A"},
     {"allOf": [{"$ref": "#/components/schemas/A"}], "nullable": True, "title": "A"}),
    ({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "default": None},
     {"type": "integer", "minimum": 1, "nullable": True, "default": None}),
    ({"const": 3}, {"enum": [3]}),
    ({"type": "string", "examples": ["a", "b"]}, {"type": "string", "example": "a"}),
    ({"type": "number", "exclusiveMinimum": 0, "minimum": 5}, {"type": "number", "minimum": 5}),
    ({"type": "number", "exclusiveMaximum": 1, "maximum": 5},
     {"type": "number", "maximum": 1, "exclusiveMaximum": True}),
    ({"type": "string", "contentMediaType": "image/png"}, {"type": "string", "format": "binary"}),
    ({"type": "string", "contentEncoding": "base64"}, {"type": "string", "format": "byte"}),
    ({"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}],
      "items": False}, {"type": "array", "items": {"type": "number"}, "maxItems": 2}),
    ({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
      "unevaluatedProperties": False, "$defs": {"X": {}}, "required": []}, {"type": "object"}),
    ({"type": "array"}, {"type": "array", "items": {}}),
    ({"type": "string", "default": None}, {"type": "string"}),
    ({"type": "object", "properties": {"type": {"const": "Point"}},
      "patternProperties": {"^x-": {"type": "string"}}},
     {"type": "object", "properties": {"type": {"enum": ["Point"]}},
      "additionalProperties": {"type": "string"}}),
    ({"type": "integer", "x-unit": "m"}, {"type": "integer", "x-unit": "m"}),
])
def test_schema_rules(source, expected):
    assert schema_30(source) == expected


def test_document_level_rules():
    doc = to_oas30({
        "openapi": "3.1.0", "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect",
        "info": {"title": "t", "version": "1", "summary": "short",
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "webhooks": {"hook": {}},
        "paths": {"/a/{id}": {"parameters": [
            {"name": "id", "in": "path", "required": True,
             "schema": {"type": ["integer", "null"]}}],
            "get": {"parameters": [{"$ref": "#/components/parameters/P",
                                    "description": "3.1 allows this"}],
                    "responses": {"200": {"description": "ok", "headers": {
                        "X-N": {"schema": {"const": 1}}}}}}}},
        "components": {"parameters": {"P": {"name": "p", "in": "query",
                                            "schema": {"examples": [1], "type": "integer"}}},
                       "pathItems": {}},
    })
    assert_openapi_30(doc)
    assert doc["info"] == {"title": "t", "version": "1", "description": "short",
                           "license": {"name": "MIT"}}
    assert "pathItems" not in doc["components"]
    item = doc["paths"]["/a/{id}"]
    assert item["parameters"][0]["schema"] == {"type": "integer", "nullable": True}
    assert item["get"]["parameters"] == [{"$ref": "#/components/parameters/P"}]
    assert item["get"]["responses"]["200"]["headers"]["X-N"]["schema"] == {"enum": [1]}
    assert doc["components"]["parameters"]["P"]["schema"] == {"type": "integer", "example": 1}


def test_ogc_paths_use_the_standard_parameter_names(doc: dict) -> None:
    """GDAL's OAPIF driver looks up ``/collections/{collectionId}/items`` to learn the
    query parameters; every OGC path uses the standard's names."""
    ogc = [p for p in doc["paths"] if p.startswith("/collections/")]
    assert ogc and all("{collection_id}" not in p and "{fid}" not in p for p in ogc)
    for path in ogc:
        names = {prm["name"] for op in doc["paths"][path].values()
                 for prm in op.get("parameters", []) if prm["in"] == "path"}
        assert names == set(re.findall(r"\{(\w+)\}", path)), path
