"""`GET /openapi.json` on a real `kgents serve`: an OpenAPI 3.1 document that validates, behind the token like
every route, generated from the routes table and the shapes that read request bodies, so the two cannot
disagree: every route the app serves is in it with what its token needs, every route's body lists the fields its
shape reads, and a field outside them is refused as before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from kgents.config import Settings
from kgents.errors import ValidationError
from kgents.memory import shapes
from kgents.server.routes import PERSONA, ServedHomeAPI, persona_routes, route_needs, server_routes
from tests.server_support import ServerProcess, running_server

NO_HOME = cast(ServedHomeAPI, None)


async def _unused(request: Any, body: dict[str, Any]) -> Any:
    raise NotImplementedError


BODIES = {  # (method, path): the route's shape, for every route that reads a body
    **{(r.method, f"{PERSONA}{r.path}"): r.body for r in persona_routes(NO_HOME) if r.body is not None},
    **{(r.method, r.path): r.body for r in server_routes(NO_HOME, _unused) if r.body is not None},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(Settings(home=tmp_path_factory.mktemp("openapi") / "home")) as running:
        yield running


@pytest.fixture(scope="module")
def document(server: ServerProcess) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {server.token}"})
    assert answer.status_code == 200, answer.text
    return cast(dict[str, Any], answer.json())


@pytest.mark.slow
def test_the_served_document_validates_as_openapi_3_1(server: ServerProcess, document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on anything OpenAPI 3.1 does not allow
    assert httpx.get(f"{server.url}/openapi.json").status_code == 401, "behind the token like the rest"
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/livez"]["get"]["security"] == [], "the one open path says so"


@pytest.mark.slow
def test_every_route_served_is_described_with_its_need(document: dict[str, Any]) -> None:
    served = {(method.lower(), path): need.value for method, path, need in route_needs(NO_HOME)}
    described = {
        (method, path): op["x-kgents-need"]
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if path != "/livez"
    }
    assert described == served


@pytest.mark.slow
def test_each_body_lists_the_fields_its_shape_reads(document: dict[str, Any]) -> None:
    for (method, path), shape in BODIES.items():
        schema = document["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == set(shape.fields), (method, path)
        assert schema["additionalProperties"] is (shape.extra == "ignored"), (method, path)
        required = {name for name, spec in shape.fields.items() if shapes.is_required(spec)}
        assert set(schema.get("required", ())) == required, (method, path)
    without = [
        (method, path)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op and path != "/mcp"
    ]
    assert {(m.upper(), p) for m, p in without} == set(BODIES), "no body described that no shape reads"


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), sorted(k for k, shape in BODIES.items() if shape.extra != "ignored"))
def test_a_field_outside_the_definition_is_refused(server: ServerProcess, method: str, path: str) -> None:
    operator = {"Authorization": f"Bearer {server.token}"}
    planted = httpx.post(f"{server.url}/v1/personas/kent/memories", json={"content": "a"}, headers=operator)
    concrete = path.replace("{persona}", "kent").replace("{ref}", planted.json()["id"])
    answer = httpx.request(method, f"{server.url}{concrete}", json={"colour": "red"}, headers=operator)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid" and "colour" in answer.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path"), sorted(BODIES))
def test_the_schema_and_the_reader_agree_on_unknown_and_missing_fields(method: str, path: str) -> None:
    shape = BODIES[(method, path)]
    schema = shapes.schema_of(shape)
    jsonschema.Draft202012Validator.check_schema(schema)
    if shape.extra == "ignored":  # the admin routes' options: what the action does not read is ignored
        jsonschema.validate({"colour": "red"}, schema)
    else:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"colour": "red"}, schema)
    if shape.extra == "refused":
        with pytest.raises(ValidationError, match="unknown field"):
            shapes.read(shape, {"colour": "red"})
    for name, spec in shape.fields.items():
        if shapes.is_required(spec):
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate({}, schema)
            with pytest.raises(ValidationError, match=name):
                shapes.read(shape, {})


def test_the_read_and_the_schema_of_a_recall() -> None:
    from kgents.server.handlers import RECALL

    body = shapes.read(RECALL, {"query": "tea", "filters": {"tags": ["drinks"]}})
    assert (body["query"], body["limit"], body["mode"], body["explain"]) == ("tea", 10, "hybrid", False)
    assert body["filters"].tags == ("drinks",)
    schema = shapes.schema_of(RECALL)
    assert schema["required"] == ["query"]
    assert schema["properties"]["limit"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}
    jsonschema.validate({"query": "tea", "limit": 5, "filters": {"tags": ["a"]}, "min_score": None}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"query": "tea", "filters": {"colour": "red"}}, schema)
